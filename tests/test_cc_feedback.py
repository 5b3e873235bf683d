"""Transport-cc and REMB wire formats, the feedback generator and the sent-packet history."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudarcade.cc import FeedbackGenerator, Remb, SentPacketHistory, TransportFeedback
from cloudarcade.cc.rtcp import congestion_feedback, split_compound
from cloudarcade.client.nack import SequenceUnwrapper

deltas = st.lists(
    st.one_of(st.none(), st.integers(0, 255), st.integers(-32768, 32767)),
    min_size=1,
    max_size=300,
)


@given(
    base=st.integers(0, 65535),
    reference=st.integers(0, (1 << 24) - 1),
    count=st.integers(0, 255),
    deltas=deltas,
)
def test_transport_feedback_round_trip(
    base: int, reference: int, count: int, deltas: list[int | None]
) -> None:
    packet = TransportFeedback(
        sender_ssrc=1, media_ssrc=2, base_sequence=base, reference_time=reference,
        feedback_count=count, deltas=tuple(deltas),
    )
    data = bytes(packet)
    assert len(data) % 4 == 0
    assert TransportFeedback.parse(data) == packet


def test_known_bytes_run_length_and_wrap() -> None:
    # Two packets across the 16-bit wrap: 65535 received (+1 tick), 0 lost,
    # 1 received 1000 ticks later (large delta).
    packet = TransportFeedback(
        sender_ssrc=0x01020304, media_ssrc=0, base_sequence=65535, reference_time=5,
        feedback_count=7, deltas=(1, None, 1000),
    )
    parsed = TransportFeedback.parse(bytes(packet))
    assert [seq for seq, _ in parsed.packets()] == [65535, 0, 1]
    arrivals = [arrival for _, arrival in parsed.packets()]
    assert arrivals[0] == pytest.approx(5 * 0.064 + 0.00025)
    assert arrivals[1] is None
    assert arrivals[2] == pytest.approx(5 * 0.064 + 1001 * 0.00025)
    # A run of 20 received-small packets encodes as one run-length chunk.
    run = TransportFeedback(
        sender_ssrc=1, media_ssrc=2, base_sequence=0, reference_time=0,
        feedback_count=0, deltas=(4,) * 20,
    )
    data = bytes(run)
    assert data[20:22] == bytes([0x20, 20])  # symbol 01, run 20


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:16], "expected >= 20"),
        (lambda d: bytes([0x40]) + d[1:], "version"),
        (lambda d: d[:1] + bytes([200]) + d[2:], "expected 205 fmt 15"),
        (lambda d: d[:2] + b"\x00\x40" + d[4:], "only"),
    ],
)
def test_transport_feedback_rejects_malformed(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = bytes(
        TransportFeedback(
            sender_ssrc=1, media_ssrc=2, base_sequence=0, reference_time=0,
            feedback_count=0, deltas=(1, None, 300),
        )
    )
    with pytest.raises(ValueError, match=message):
        TransportFeedback.parse(mutate(data))


def test_truncated_deltas_and_reserved_symbol() -> None:
    data = bytearray(
        bytes(
            TransportFeedback(
                sender_ssrc=1, media_ssrc=2, base_sequence=0, reference_time=0,
                feedback_count=0, deltas=(1000, 1000, 1000),
            )
        )
    )
    data[0] &= ~0x20  # drop the padding flag, then cut the deltas short
    data[2:4] = (5).to_bytes(2, "big")
    with pytest.raises(ValueError, match="truncated"):
        TransportFeedback.parse(bytes(data[:24]))
    data[20:22] = bytes([0x60, 3])  # run of symbol 3
    with pytest.raises(ValueError, match="reserved"):
        TransportFeedback.parse(bytes(data))


def test_out_of_range_fields_name_the_field() -> None:
    with pytest.raises(ValueError, match="base_sequence 70000"):
        TransportFeedback(
            sender_ssrc=1, media_ssrc=2, base_sequence=70000, reference_time=0,
            feedback_count=0, deltas=(1,),
        )


def test_generator_and_history_resolve_losses_across_wrap() -> None:
    history = SentPacketHistory()
    for _ in range(65530):  # move the sequence close to the wrap
        history.on_sent(100, 0.0)
    generator = FeedbackGenerator(sender_ssrc=9, interval=0.05)
    assert generator.next_wakeup() is None  # nothing to report yet
    sent = []
    for i in range(12):
        seq = history.on_sent(1000 + i, 1.0 + i * 0.001)
        sent.append(seq)
        if i not in (3, 7):  # two packets lost
            generator.on_packet(seq, 10.0 + i * 0.002)
    assert sent[5] == 65535 and sent[6] == 0
    assert generator.feedback(10.01) == []
    assert generator.next_wakeup() == pytest.approx(10.05)
    [packet] = generator.feedback(10.05)
    assert generator.next_wakeup() is None  # all reported
    results = history.on_feedback(TransportFeedback.parse(bytes(packet)))
    assert [r.size for r in results] == [1000 + i for i in range(12)]
    lost = [r.size - 1000 for r in results if r.arrival is None]
    assert lost == [3, 7]
    arrivals = [r.arrival for r in results if r.arrival is not None]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(g == pytest.approx(0.002, abs=0.00026) or g == pytest.approx(0.004, abs=0.00026)
               for g in gaps)
    # Reported packets are not reported again; a late duplicate is ignored.
    generator.on_packet(sent[0], 10.2)
    assert generator.feedback(10.3) == []


def test_generator_splits_large_gaps() -> None:
    generator = FeedbackGenerator(sender_ssrc=1, interval=0.05)
    generator.on_packet(100, 1.0)
    generator.on_packet(100 + 20000, 1.01)
    packets = generator.feedback(1.1)
    assert [p.base_sequence for p in packets] == [100, 20100]


def test_seq_unwrapper() -> None:
    unwrapper = SequenceUnwrapper()
    assert [unwrapper.unwrap(s) for s in (65534, 65535, 0, 65535, 2)] == [
        65534, 65535, 65536, 65535, 65538,
    ]


@given(bitrate=st.integers(0, (1 << 40)), ssrcs=st.lists(st.integers(0, 2**32 - 1), max_size=4))
def test_remb_round_trip(bitrate: int, ssrcs: list[int]) -> None:
    parsed = Remb.parse(bytes(Remb(sender_ssrc=5, bitrate=bitrate, ssrcs=tuple(ssrcs))))
    assert parsed.ssrcs == tuple(ssrcs)
    # 18 bits of mantissa: exact below 2**18, within 2**-17 above.
    assert bitrate - parsed.bitrate <= bitrate / (1 << 17)


def test_compound_split_keeps_the_rest_for_aiortc() -> None:
    twcc = bytes(
        TransportFeedback(
            sender_ssrc=1, media_ssrc=2, base_sequence=0, reference_time=0,
            feedback_count=0, deltas=(1,),
        )
    )
    remb = bytes(Remb(sender_ssrc=1, bitrate=1_000_000, ssrcs=(2,)))
    receiver_report = bytes([0x80, 201, 0, 1, 0, 0, 0, 1])
    feedback, rembs, rest = congestion_feedback(receiver_report + twcc + remb)
    assert len(feedback) == 1 and rembs[0].bitrate == 1_000_000
    assert rest == receiver_report
    with pytest.raises(ValueError, match="exceeds"):
        split_compound(receiver_report[:4] + b"\x00" * 2)


def test_history_forgets_the_oldest_packets_beyond_its_cap() -> None:
    history = SentPacketHistory(max_packets=4)
    for i in range(6):
        history.on_sent(100 + i, float(i))
    feedback = TransportFeedback(sender_ssrc=1, media_ssrc=2, base_sequence=0, reference_time=0,
                                 feedback_count=0, deltas=(4,) * 6)
    assert [r.size for r in history.on_feedback(feedback)] == [102, 103, 104, 105]
