"""REMB: a receiver's bitrate estimate (draft-alvestrand-rmcat-remb-03), RTCP PSFB FMT=15.

    |V=2|P| FMT=15  |   PT=206      |             length            |
    |                  SSRC of packet sender                        |
    |                  SSRC of media source (0)                     |
    |  Unique identifier 'R' 'E' 'M' 'B'                            |
    |  Num SSRC     | BR Exp    |  BR Mantissa (18 bits)            |
    |   SSRC feedback ...                                           |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTCP_PSFB = 206
FMT_AFB = 15
_MANTISSA_MAX = (1 << 18) - 1


@dataclass(frozen=True)
class Remb:
    """One REMB message: the bitrate (bits/s) the receiver can take for ``ssrcs``."""

    sender_ssrc: int
    bitrate: int
    ssrcs: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.bitrate < 0:
            raise ValueError(f"REMB bitrate {self.bitrate}: expected >= 0")
        if len(self.ssrcs) > 255:
            raise ValueError(f"REMB with {len(self.ssrcs)} SSRCs: expected at most 255")

    def __bytes__(self) -> bytes:
        exponent = 0
        mantissa = self.bitrate
        while mantissa > _MANTISSA_MAX:
            mantissa >>= 1
            exponent += 1
        body = struct.pack(
            "!LL4sL",
            self.sender_ssrc,
            0,
            b"REMB",
            (len(self.ssrcs) << 24) | (exponent << 18) | mantissa,
        ) + b"".join(struct.pack("!L", s) for s in self.ssrcs)
        return struct.pack("!BBH", 0x80 | FMT_AFB, RTCP_PSFB, len(body) // 4) + body

    @classmethod
    def parse(cls, data: bytes) -> Remb:
        """Parse one RTCP packet (header included); raises ValueError when it is not REMB."""
        if len(data) < 20:
            raise ValueError(f"REMB of {len(data)} bytes: expected >= 20")
        first, packet_type, length = struct.unpack_from("!BBH", data)
        if first >> 6 != 2 or packet_type != RTCP_PSFB or first & 0x1F != FMT_AFB:
            raise ValueError(
                f"RTCP version {first >> 6} type {packet_type} fmt {first & 0x1F}: "
                "expected version 2, type 206, fmt 15"
            )
        sender, _, ident, word = struct.unpack_from("!LL4sL", data, 4)
        if ident != b"REMB":
            raise ValueError(f"PSFB application feedback {ident!r}: expected b'REMB'")
        count = word >> 24
        end = (length + 1) * 4
        if end > len(data) or end < 20 + 4 * count:
            raise ValueError(f"REMB with {count} SSRCs: packet of {end} bytes is too short")
        bitrate = (word & _MANTISSA_MAX) << ((word >> 18) & 0x3F)
        ssrcs = struct.unpack_from(f"!{count}L", data, 20)
        return cls(sender_ssrc=sender, bitrate=bitrate, ssrcs=tuple(ssrcs))
