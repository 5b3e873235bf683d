"""The client's receive path, sans I/O: frame assembly and NACK timing on a fake clock."""

from __future__ import annotations

from cloudarcade.client.assembler import FrameAssembler, h264_is_keyframe, vp8_is_keyframe
from cloudarcade.client.nack import NackTracker, SequenceUnwrapper

IDR = b"\x00\x00\x00\x01\x65idr"
P_SLICE = b"\x00\x00\x00\x01\x41p"


def _assembler() -> FrameAssembler:
    return FrameAssembler(h264_is_keyframe, loss_timeout=0.2)


def _frame(seq: int, ts: int, parts: int, key: bool) -> list[tuple[int, int, bool, bytes]]:
    """The packets of one frame: (seq, timestamp, marker, payload)."""
    first = IDR if key else P_SLICE
    return [(seq + i, ts, i == parts - 1, first if i == 0 else b"x") for i in range(parts)]


def test_frame_released_on_its_marker_packet_not_on_the_next_frame() -> None:
    a = _assembler()
    out = []
    for seq, ts, marker, data in _frame(100, 3000, 3, key=True):
        out = a.push(seq, ts, marker, data, now=1.0)
        if not marker:
            assert out == []  # incomplete: nothing yet
    # Released by its own last packet; aiortc would wait for frame 2's first packet.
    assert len(out) == 1 and out[0].keyframe and out[0].first_seq == 100
    assert out[0].data == IDR + b"xx"


def test_every_complete_frame_is_released_at_once_after_a_gap_fills() -> None:
    a = _assembler()
    assert a.push(*_frame(0, 0, 1, key=True)[0], now=0.0)
    packets = _frame(1, 1, 2, False) + _frame(3, 2, 2, False) + _frame(5, 3, 2, False)
    lost = packets.pop(0)  # the first packet of frame 1 is late
    for seq, ts, marker, data in packets:
        assert a.push(seq, ts, marker, data, now=0.01) == []
    released = a.push(*lost, now=0.02)  # the retransmission arrives
    assert [f.timestamp for f in released] == [1, 2, 3]


def test_a_frame_lost_for_good_is_skipped_and_waits_for_a_keyframe() -> None:
    a = _assembler()
    a.push(*_frame(0, 0, 1, key=True)[0], now=0.0)
    frame1 = _frame(1, 1, 2, False)
    a.push(*frame1[1], now=0.0)  # its first packet never comes
    for seq, ts, marker, data in _frame(3, 2, 1, False):
        assert a.push(seq, ts, marker, data, now=0.05) == []
    assert a.poll(0.1) == [] and not a.keyframe_needed  # still within the loss timeout
    assert a.poll(0.3) == []  # given up: P-frames are discarded until a keyframe
    assert a.keyframe_needed and a.waiting_keyframe and a.frames_skipped == 1
    assert a.push(*_frame(4, 3, 1, False)[0], now=0.31) == []
    key = a.push(*_frame(5, 4, 1, key=True)[0], now=0.32)
    assert len(key) == 1 and key[0].keyframe and not a.waiting_keyframe


def test_duplicates_and_late_packets_are_ignored_and_seq_wraps() -> None:
    a = _assembler()
    out = a.push(65535, 10, False, IDR, now=0.0)
    out = a.push(0, 10, True, b"y", now=0.0)  # sequence number wraps inside a frame
    assert len(out) == 1 and out[0].data == IDR + b"y"
    assert a.push(0, 10, True, b"y", now=0.0) == []  # duplicate of a released packet


def test_keyframe_detection() -> None:
    assert h264_is_keyframe(IDR) and not h264_is_keyframe(P_SLICE)
    assert h264_is_keyframe(b"\x00\x00\x01\x67sps" + P_SLICE)  # SPS before the slice
    assert vp8_is_keyframe(b"\x10") and not vp8_is_keyframe(b"\x11")


def test_nack_repeats_until_the_packet_arrives() -> None:
    n = NackTracker(retry_interval=0.02, max_retries=3, max_age=1.0)
    n.received(10, now=0.0)
    n.received(13, now=0.0)  # 11 and 12 missing
    assert n.due(0.0) == [11, 12]
    assert n.due(0.01) == []  # not yet time to ask again
    assert n.next_wakeup() == 0.02
    assert n.due(0.02) == [11, 12]  # asked again: aiortc asks once only
    n.received(11, now=0.025)
    assert n.due(0.04) == [12]
    assert n.due(0.06) == []  # three tries, then given up
    assert n.given_up == 1 and n.missing == 0


def test_nack_forgets_skipped_frames_and_old_losses() -> None:
    n = NackTracker(retry_interval=0.02, max_retries=10, max_age=0.1)
    n.received(0, now=0.0)
    n.received(5, now=0.0)
    n.forget_through(2)
    assert n.due(0.0) == [3, 4]
    assert n.due(0.2) == []  # older than max_age
    assert n.missing == 0


def test_unwrapper_extends_across_wraparound_and_reordering() -> None:
    u = SequenceUnwrapper()
    assert [u.unwrap(s) for s in (65534, 65535, 0, 65533, 1)] == [65534, 65535, 65536, 65533, 65537]
