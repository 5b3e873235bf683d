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

from aiortc.rtp import pack_remb_fci, unpack_remb_fci

RTCP_PSFB = 206
FMT_AFB = 15


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
        body = struct.pack("!LL", self.sender_ssrc, 0) + pack_remb_fci(
            self.bitrate, list(self.ssrcs)
        )
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
        (sender,) = struct.unpack_from("!L", data, 4)
        if data[12:16] != b"REMB":
            raise ValueError(f"PSFB application feedback {data[12:16]!r}: expected b'REMB'")
        count = data[16]
        end = (length + 1) * 4
        if end > len(data) or end < 20 + 4 * count:
            raise ValueError(f"REMB with {count} SSRCs: packet of {end} bytes is too short")
        bitrate, ssrcs = unpack_remb_fci(data[12:end])
        return cls(sender_ssrc=sender, bitrate=bitrate, ssrcs=tuple(ssrcs))
