"""The interleaved XOR FEC code: what it claims to rebuild it rebuilds byte for byte,
and bad parity is a FecError, never a crash."""

from __future__ import annotations

import random
import struct

import pytest
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade.rtc.fec import (
    HEADER,
    MAX_COLUMNS,
    FecDecoder,
    FecEncoder,
    FecError,
    MediaPacket,
    Parity,
    protect,
)

MEDIA_SSRC = 0x1234ABCD
FEC_SSRC = 0x0BADF00D
FEC_PT = 120


def _rtp(seq: int, *, marker: bool, payload: bytes, timestamp: int = 9000,
         extension: bool = False, padding: int = 0) -> bytes:
    """A serialized RTP packet as aiortc's sender makes it (mid/abs-send-time extensions)."""
    head = 0x80 | (0x10 if extension else 0) | (0x20 if padding else 0)
    data = struct.pack("!BBHLL", head, (0x80 if marker else 0) | 96, seq, timestamp, MEDIA_SSRC)
    if extension:
        data += struct.pack("!HH", 0xBEDE, 1) + bytes([0x10, 0x31, 0, 0])
    data += payload
    if padding:
        data += bytes(padding - 1) + bytes([padding])
    return data


@st.composite
def _frames(draw: st.DrawFn) -> list[MediaPacket]:
    count = draw(st.integers(1, 30))
    base = draw(st.integers(0, 0xFFFF))  # wraps around now and then
    timestamp = draw(st.integers(0, 2**32 - 1))
    return [
        MediaPacket((base + i) & 0xFFFF, MEDIA_SSRC, (0x80 if i == count - 1 else 0) | 96,
                    timestamp, draw(st.binary(max_size=80)))
        for i in range(count)
    ]


def _deliver(frame: list[MediaPacket], parity: list[Parity], lost: set[int],
             order: list[int] | None = None) -> tuple[FecDecoder, list[MediaPacket]]:
    """Positions 0..n-1 are media, n.. parity (sending order); ``lost`` positions vanish."""
    stream: list[MediaPacket | Parity] = [*frame, *parity]
    decoder = FecDecoder(MEDIA_SSRC)
    rebuilt: list[MediaPacket] = []
    for position in order if order is not None else range(len(stream)):
        if position in lost:
            continue
        item = stream[position]
        if isinstance(item, MediaPacket):
            rebuilt += decoder.media(item)
        else:
            rebuilt += decoder.parity(bytes(item))
    return decoder, rebuilt


@settings(max_examples=300)
@given(_frames(), st.integers(1, 8), st.data())
def test_any_burst_of_up_to_m_losses_is_rebuilt_byte_for_byte(
    frame: list[MediaPacket], columns: int, data: st.DataObject
) -> None:
    parity = protect(frame, columns)
    total = len(frame) + len(parity)
    length = data.draw(st.integers(1, len(parity)))  # m is cut to the frame's size
    start = data.draw(st.integers(0, total - length))
    lost = set(range(start, start + length))
    _, rebuilt = _deliver(frame, parity, lost)
    expected = [bytes(frame[i]) for i in sorted(lost) if i < len(frame)]
    base = frame[0].sequence_number
    rebuilt.sort(key=lambda p: (p.sequence_number - base) & 0xFFFF)
    assert [bytes(p) for p in rebuilt] == expected


@settings(max_examples=300)
@given(_frames(), st.integers(1, 8), st.data())
def test_any_loss_pattern_rebuilds_exactly_the_columns_with_one_loss(
    frame: list[MediaPacket], columns: int, data: st.DataObject
) -> None:
    parity = protect(frame, columns)
    m = len(parity)
    total = len(frame) + m
    lost = set(data.draw(st.lists(st.integers(0, total - 1), max_size=total)))
    claimed = set()
    for position, p in enumerate(parity, start=len(frame)):
        missing = [i for i in range(p.column, len(frame), m) if i in lost]
        if position not in lost and len(missing) == 1:
            claimed.add(missing[0])
    original = {packet.sequence_number: bytes(packet) for packet in frame}
    # In sending order: exactly the claimed packets, each once.
    decoder, rebuilt = _deliver(frame, parity, lost)
    assert sorted(p.sequence_number for p in rebuilt) == \
        sorted(frame[i].sequence_number for i in claimed)
    assert all(bytes(p) == original[p.sequence_number] for p in rebuilt)
    assert decoder.recovered == len(claimed)
    # In any order: a parity that comes before its column's last packet rebuilds
    # that packet early; still each at most once, byte for byte.
    order = data.draw(st.permutations(list(range(total))))
    _, rebuilt = _deliver(frame, parity, lost, order)
    seqs = [p.sequence_number for p in rebuilt]
    assert len(set(seqs)) == len(seqs)
    assert {frame[i].sequence_number for i in claimed} <= set(seqs)
    assert all(bytes(p) == original[p.sequence_number] for p in rebuilt)


@given(st.lists(st.tuples(st.binary(max_size=60), st.booleans(), st.integers(0, 9)),
                min_size=1, max_size=12),
       st.integers(1, 6), st.integers(0, 20))
def test_encoder_parity_rebuilds_serialized_packets_with_extensions_and_padding(
    packets: list[tuple[bytes, bool, int]], columns: int, lost_index: int
) -> None:
    encoder = FecEncoder(media_ssrc=MEDIA_SSRC, ssrc=FEC_SSRC, payload_type=FEC_PT,
                         sequence_number=0xFFFE)
    encoder.columns = columns
    sent = [_rtp((65530 + i) & 0xFFFF, marker=i == len(packets) - 1, payload=payload,
                 extension=ext, padding=pad)
            for i, (payload, ext, pad) in enumerate(packets)]
    parity_packets: list[bytes] = []
    for data in sent:
        parity_packets += encoder.push(data)
    assert len(parity_packets) == min(columns, len(packets))
    lost = lost_index % len(sent)
    decoder = FecDecoder(MEDIA_SSRC)
    for i, data in enumerate(sent):
        if i != lost:
            assert decoder.media(MediaPacket.parse(data)) == []
    rebuilt: list[MediaPacket] = []
    for data in parity_packets:
        fec = RtpPacket.parse(data)
        assert (fec.ssrc, fec.payload_type, fec.marker) == (FEC_SSRC, FEC_PT, 0)
        rebuilt += decoder.parity(fec.payload)
    assert rebuilt == [MediaPacket.parse(sent[lost])]
    again = RtpPacket.parse(bytes(rebuilt[0]))  # goes down the receive path as a packet
    assert (again.sequence_number, again.marker, again.payload) == (
        (65530 + lost) & 0xFFFF, int(lost == len(sent) - 1), packets[lost][0])
    assert [RtpPacket.parse(p).sequence_number for p in parity_packets] == \
        [(0xFFFE + i) & 0xFFFF for i in range(len(parity_packets))]


def test_encoder_sends_nothing_while_off_and_ignores_other_ssrcs() -> None:
    encoder = FecEncoder(media_ssrc=MEDIA_SSRC, ssrc=FEC_SSRC, payload_type=FEC_PT)
    assert encoder.push(_rtp(1, marker=True, payload=b"x")) == []
    encoder.columns = 2
    rtx = bytearray(_rtp(2, marker=True, payload=b"y"))
    rtx[8:12] = struct.pack("!L", 42)
    assert encoder.push(bytes(rtx)) == []
    # Columns are read at a frame's first packet: this frame goes out protected.
    assert encoder.push(_rtp(3, marker=False, payload=b"a")) == []
    encoder.columns = 0
    assert len(encoder.push(_rtp(4, marker=True, payload=b"bb"))) == 2
    assert encoder.push(_rtp(5, marker=True, payload=b"c")) == []
    assert encoder.frames_protected == 1 and encoder.packets_sent == 2
    assert encoder.parity_bytes > 0 and encoder.media_bytes > 0


@pytest.mark.parametrize(("count", "expected"), [(1, 1), (2, 1), (3, 2), (7, 4), (12, 5)])
def test_max_ratio_caps_parity_per_frame_packet(count: int, expected: int) -> None:
    encoder = FecEncoder(media_ssrc=MEDIA_SSRC, ssrc=FEC_SSRC, payload_type=FEC_PT,
                         max_ratio=0.5)
    encoder.columns = 5
    parity: list[bytes] = []
    for i in range(count):
        parity += encoder.push(_rtp(i, marker=i == count - 1, payload=b"p" * (i + 1)))
    assert len(parity) == expected


def test_a_gap_in_the_frame_leaves_it_unprotected() -> None:
    encoder = FecEncoder(media_ssrc=MEDIA_SSRC, ssrc=FEC_SSRC, payload_type=FEC_PT)
    encoder.columns = 3
    encoder.push(_rtp(10, marker=False, payload=b"a"))
    assert encoder.push(_rtp(12, marker=True, payload=b"b")) == []
    assert len(encoder.push(_rtp(13, marker=True, payload=b"c"))) == 1


def _parity_bytes(**changes: int) -> bytes:
    fields = dict(version=1, columns=2, column=1, first=0, ssrc=MEDIA_SSRC, base=100, count=4,
                  timestamp=0, length=0)
    fields.update(changes)
    return HEADER.pack(*fields.values()) + b"body"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "FEC parity of 0 bytes; expected at least 18"),
    (_parity_bytes()[:17], "FEC parity of 17 bytes; expected at least 18"),
    (_parity_bytes(version=2), "FEC parity version 2; expected 1"),
    (_parity_bytes(columns=0), "FEC parity with 0 columns; expected 1..16"),
    (_parity_bytes(columns=MAX_COLUMNS + 1), "FEC parity with 17 columns; expected 1..16"),
    (_parity_bytes(count=0), "FEC parity over 0 packets; expected 1..4096"),
    (_parity_bytes(column=2), "FEC parity column 2; expected < 2"),
    (_parity_bytes(ssrc=7), "FEC parity for SSRC 7; expected 305441741"),
])
def test_bad_parity_is_rejected_with_what_was_expected(data: bytes, message: str) -> None:
    with pytest.raises(FecError, match=message):
        FecDecoder(MEDIA_SSRC).parity(data)


def test_a_parity_body_too_short_for_the_packet_it_rebuilds_is_an_error() -> None:
    decoder = FecDecoder(MEDIA_SSRC)
    decoder.media(MediaPacket(100, MEDIA_SSRC, 96, 0, b"x" * 10))
    with pytest.raises(FecError, match="body of 4 bytes cannot rebuild a 10-byte payload"):
        decoder.parity(_parity_bytes(columns=1, column=0, count=2))


@given(st.binary(max_size=64))
def test_any_bytes_as_parity_are_a_fec_error_or_accepted(data: bytes) -> None:
    decoder = FecDecoder(MEDIA_SSRC)
    decoder.media(MediaPacket(100, MEDIA_SSRC, 96, 0, b"abc"))
    try:
        rebuilt = decoder.parity(data)
    except FecError as exc:
        assert str(exc).startswith("FEC parity")  # says what was wrong
        return
    # Accepted: it rebuilds at most the one packet its column misses, never one that arrived.
    assert len(rebuilt) <= 1
    assert all(p.sequence_number != 100 and p.ssrc == MEDIA_SSRC for p in rebuilt)


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\x60", "RTP packet of 2 bytes"),
    (b"\x40" + bytes(11), "RTP version 1; expected 2"),
    (b"\x90" + bytes(11), "header extension truncated"),
])
def test_media_that_is_not_rtp_is_a_fec_error(data: bytes, message: str) -> None:
    with pytest.raises(FecError, match=message):
        MediaPacket.parse(data)


def test_memory_stays_bounded() -> None:
    decoder = FecDecoder(MEDIA_SSRC, history=100, max_groups=4)
    rng = random.Random(1)
    for frame_index in range(50):
        frame = [MediaPacket((frame_index * 10 + i) & 0xFFFF, MEDIA_SSRC, 96, frame_index,
                             rng.randbytes(20)) for i in range(10)]
        for packet in frame[1:]:
            decoder.media(packet)
        for parity in protect(frame, 2):
            decoder.parity(bytes(parity))
    assert decoder.recovered == 50
    assert len(decoder._received) <= 100 and len(decoder._groups) <= 4
    assert len(decoder._owner) <= 40
