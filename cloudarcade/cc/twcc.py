"""Transport-wide congestion control feedback: RTCP RTPFB FMT=15.

The wire format of draft-holmer-rmcat-transport-wide-cc-extensions-01,
section 3.1, as one dataclass with ``__bytes__`` and ``parse``::

    |V=2|P|  FMT=15 |    PT=205     |           length              |
    |                     SSRC of packet sender                     |
    |                      SSRC of media source                     |
    |      base sequence number     |      packet status count      |
    |                 reference time                | fb pkt. count |
    |  packet chunk  |  packet chunk  |  ...  | recv delta | ... | padding

Each packet from ``base_sequence`` on has a status; a received one has a
receive delta in 250 µs ticks from the previous received packet (the first
from ``reference_time``, in 64 ms units). Deltas of 0..255 ticks take one byte
("small"), others two bytes signed ("large").

``deltas`` holds one entry per packet: the delta in ticks, or None for a
packet not received. Sequence numbers wrap at 2**16, so
``base_sequence + i`` is taken modulo 2**16.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

#: The RTP header extension that carries the transport-wide sequence number.
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

RTCP_RTPFB = 205
FMT_TRANSPORT_CC = 15

TICK_S = 0.000250  # receive delta unit
REFERENCE_TICK_S = 0.064  # reference time unit
TICKS_PER_REFERENCE = 256
REFERENCE_MODULO = 1 << 24
SEQ_MODULO = 1 << 16

# Status symbols.
_NOT_RECEIVED = 0
_SMALL = 1
_LARGE = 2

_RUN_MAX = (1 << 13) - 1


def _symbol(delta: int | None) -> int:
    if delta is None:
        return _NOT_RECEIVED
    return _SMALL if 0 <= delta <= 255 else _LARGE


@dataclass(frozen=True)
class TransportFeedback:
    """One transport-cc feedback packet."""

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int  # 16-bit
    reference_time: int  # 24-bit, units of 64 ms
    feedback_count: int  # 8-bit, counts feedback packets sent
    deltas: tuple[int | None, ...]  # per packet: ticks of 250 µs, None = lost

    def __post_init__(self) -> None:
        for name, value, bits in (
            ("sender_ssrc", self.sender_ssrc, 32),
            ("media_ssrc", self.media_ssrc, 32),
            ("base_sequence", self.base_sequence, 16),
            ("reference_time", self.reference_time, 24),
            ("feedback_count", self.feedback_count, 8),
        ):
            if not 0 <= value < 1 << bits:
                raise ValueError(f"transport-cc {name} {value}: expected 0..{(1 << bits) - 1}")
        if not 1 <= len(self.deltas) < SEQ_MODULO:
            raise ValueError(
                f"transport-cc packet status count {len(self.deltas)}: expected 1..65535"
            )
        for delta in self.deltas:
            if delta is not None and not -32768 <= delta <= 32767:
                raise ValueError(
                    f"transport-cc receive delta {delta} ticks: expected -32768..32767"
                )

    def packets(self) -> Iterator[tuple[int, float | None]]:
        """(sequence number, arrival in seconds on the receiver's clock, or None if lost).

        The arrival is ``reference_time`` plus the running sum of deltas; the
        caller unwraps ``reference_time`` across packets if it needs to.
        """
        ticks = self.reference_time * TICKS_PER_REFERENCE
        for i, delta in enumerate(self.deltas):
            seq = (self.base_sequence + i) % SEQ_MODULO
            if delta is None:
                yield seq, None
            else:
                ticks += delta
                yield seq, ticks * TICK_S

    @property
    def received(self) -> int:
        return sum(1 for d in self.deltas if d is not None)

    def __bytes__(self) -> bytes:
        symbols = [_symbol(d) for d in self.deltas]
        chunks = b"".join(struct.pack("!H", c) for c in _encode_chunks(symbols))
        recv = b"".join(
            struct.pack("!B", d) if s == _SMALL else struct.pack("!h", d)
            for d, s in zip(self.deltas, symbols, strict=True)
            if d is not None
        )
        body = (
            struct.pack(
                "!LLHHL",
                self.sender_ssrc,
                self.media_ssrc,
                self.base_sequence,
                len(self.deltas),
                (self.reference_time << 8) | self.feedback_count,
            )
            + chunks
            + recv
        )
        padding = -len(body) % 4
        if padding:
            # RTCP padding: zeros, the last byte counts them, P bit set.
            body += bytes(padding - 1) + bytes([padding])
        length = (4 + len(body)) // 4 - 1
        first = 0x80 | (0x20 if padding else 0) | FMT_TRANSPORT_CC
        return struct.pack("!BBH", first, RTCP_RTPFB, length) + body

    @classmethod
    def parse(cls, data: bytes) -> TransportFeedback:
        """Parse one RTCP packet (header included); raises ValueError when malformed."""
        if len(data) < 20:
            raise ValueError(f"transport-cc feedback of {len(data)} bytes: expected >= 20")
        first, packet_type, length = struct.unpack_from("!BBH", data)
        if first >> 6 != 2:
            raise ValueError(f"transport-cc feedback RTP version {first >> 6}: expected 2")
        if packet_type != RTCP_RTPFB or first & 0x1F != FMT_TRANSPORT_CC:
            raise ValueError(
                f"RTCP packet type {packet_type} fmt {first & 0x1F}: expected 205 fmt 15"
            )
        end = (length + 1) * 4
        if end > len(data):
            raise ValueError(f"transport-cc length {end} bytes: only {len(data)} available")
        if first & 0x20:
            padding = data[end - 1]
            if not 1 <= padding <= end - 20:
                raise ValueError(f"transport-cc padding {padding}: longer than the packet")
            end -= padding
        sender, media, base, count, ref_fb = struct.unpack_from("!LLHHL", data, 4)
        if count == 0:
            raise ValueError("transport-cc packet status count 0: expected >= 1")
        pos = 20
        symbols: list[int] = []
        while len(symbols) < count:
            if pos + 2 > end:
                raise ValueError("transport-cc packet chunks: truncated")
            (chunk,) = struct.unpack_from("!H", data, pos)
            pos += 2
            symbols.extend(_decode_chunk(chunk))
        del symbols[count:]
        deltas: list[int | None] = []
        for symbol in symbols:
            if symbol == _NOT_RECEIVED:
                deltas.append(None)
            elif symbol == _SMALL:
                if pos + 1 > end:
                    raise ValueError("transport-cc receive deltas: truncated")
                deltas.append(data[pos])
                pos += 1
            elif symbol == _LARGE:
                if pos + 2 > end:
                    raise ValueError("transport-cc receive deltas: truncated")
                deltas.append(struct.unpack_from("!h", data, pos)[0])
                pos += 2
            else:
                raise ValueError("transport-cc status symbol 3 is reserved")
        return cls(
            sender_ssrc=sender,
            media_ssrc=media,
            base_sequence=base,
            reference_time=ref_fb >> 8,
            feedback_count=ref_fb & 0xFF,
            deltas=tuple(deltas),
        )


def _decode_chunk(chunk: int) -> list[int]:
    if not chunk & 0x8000:  # run length
        return [(chunk >> 13) & 0x3] * (chunk & _RUN_MAX)
    if not chunk & 0x4000:  # 14 one-bit symbols
        return [(chunk >> (13 - i)) & 0x1 for i in range(14)]
    return [(chunk >> (12 - 2 * i)) & 0x3 for i in range(7)]  # 7 two-bit symbols


def _encode_chunks(symbols: list[int]) -> list[int]:
    """Greedy chunking: a run when at least 14 symbols repeat, else a vector."""
    chunks: list[int] = []
    i = 0
    n = len(symbols)
    while i < n:
        run = 1
        while i + run < n and run < _RUN_MAX and symbols[i + run] == symbols[i]:
            run += 1
        if run >= 14 or i + run == n:
            chunks.append((symbols[i] << 13) | run)
            i += run
            continue
        window = symbols[i : i + 14]
        if _LARGE not in window:
            chunk = 0x8000
            for k, s in enumerate(window):
                chunk |= s << (13 - k)
            chunks.append(chunk)
            i += len(window)
        else:
            window = symbols[i : i + 7]
            chunk = 0xC000
            for k, s in enumerate(window):
                chunk |= s << (12 - 2 * k)
            chunks.append(chunk)
            i += len(window)
    return chunks
