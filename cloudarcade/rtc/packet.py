"""Wire-level views the seams hand to steps.

``OutgoingRtp`` is a serialized RTP packet on its way out (after aiortc's
sender serialized it, before SRTP), with its header extensions open for
editing by id. aiortc's ``HeaderExtensionsMap`` only knows a fixed set of
URIs, so steps that write other extensions (playout-delay, say) work on this
view instead of on aiortc's ``RtpPacket``.

``Feedback`` is what a receive step asks to send: anything that becomes an
RTCP packet once the receiver's own SSRC is known.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    pack_header_extensions,
    pack_remb_fci,
    unpack_header_extensions,
)

_FIXED = struct.Struct("!BBHLL")


@dataclass
class OutgoingRtp:
    """One RTP packet about to be protected and sent.

    ``extensions`` maps extension id to value; steps may add or replace
    entries. Everything else is read-only: it was decided by aiortc's sender.
    """

    first_byte: int
    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    csrc: bytes
    extensions: dict[int, bytes]
    payload: bytes  # including any padding (the P bit stays in first_byte)

    @classmethod
    def parse(cls, data: bytes) -> OutgoingRtp:
        """Read a serialized RTP packet; raises ``ValueError`` if it is not one."""
        if len(data) < _FIXED.size:
            raise ValueError(f"RTP packet of {len(data)} bytes; expected at least 12")
        first, second, seq, timestamp, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != 2:
            raise ValueError(f"RTP version {first >> 6}; expected 2")
        pos = _FIXED.size
        csrc_end = pos + 4 * (first & 0x0F)
        csrc = data[pos:csrc_end]
        pos = csrc_end
        extensions: dict[int, bytes] = {}
        if first & 0x10:
            if len(data) < pos + 4:
                raise ValueError("RTP header extension truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            value = data[pos + 4 : pos + 4 + 4 * words]
            if len(value) != 4 * words:
                raise ValueError("RTP header extension truncated")
            extensions = dict(unpack_header_extensions(profile, value))
            pos += 4 + 4 * words
        return cls(
            first_byte=first & ~0x10,
            marker=bool(second & 0x80),
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            csrc=csrc,
            extensions=extensions,
            payload=data[pos:],
        )

    def __bytes__(self) -> bytes:
        profile, value = pack_header_extensions(sorted(self.extensions.items()))
        first = self.first_byte | (0x10 if self.extensions else 0)
        second = (0x80 if self.marker else 0) | self.payload_type
        out = _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        out += self.csrc
        if self.extensions:
            out += struct.pack("!HH", profile, len(value) // 4) + value
        return out + self.payload


class Feedback(Protocol):
    """Something a receive step wants sent as RTCP from the receiver's SSRC."""

    def to_rtcp(self, sender_ssrc: int) -> bytes: ...


@dataclass(frozen=True)
class Nack:
    """Generic NACK (RFC 4585 6.2.1) for ``lost`` 16-bit sequence numbers."""

    media_ssrc: int
    lost: list[int] = field(default_factory=list)

    def to_rtcp(self, sender_ssrc: int) -> bytes:
        packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=sender_ssrc, media_ssrc=self.media_ssrc)
        packet.lost = list(self.lost)
        return bytes(packet)


@dataclass(frozen=True)
class Pli:
    """Picture Loss Indication (RFC 4585 6.3.1): please send a keyframe."""

    media_ssrc: int

    def to_rtcp(self, sender_ssrc: int) -> bytes:
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=sender_ssrc,
                                    media_ssrc=self.media_ssrc))


@dataclass(frozen=True)
class Remb:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb)."""

    bitrate: int
    ssrcs: list[int]

    def to_rtcp(self, sender_ssrc: int) -> bytes:
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender_ssrc, media_ssrc=0,
                                    fci=pack_remb_fci(self.bitrate, self.ssrcs)))
