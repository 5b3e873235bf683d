"""Wire-level views the seams hand to steps.

``OutgoingRtp`` is a serialized RTP packet on its way out (after aiortc's
sender serialized it, before SRTP), with its header extensions open for
editing by id. aiortc's ``HeaderExtensionsMap`` only knows a fixed set of
URIs, so steps that write other extensions (playout-delay, say) work on this
view instead of on aiortc's ``RtpPacket``; it reads the bytes in place and
rewrites only the extension block, and only when a step sets an extension.

``Feedback`` is what a receive step asks to send: anything that becomes an
RTCP packet once the receiver's own SSRC is known.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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
_EXTENSION_HEADER = struct.Struct("!HH")
_ONE_BYTE = 0xBEDE  # RFC 8285's one-byte header form
_BYTE = [bytes((byte,)) for byte in range(256)]  # each single byte, built once
_PADDING = [bytes(n) for n in range(4)]


class OutgoingRtp:
    """One serialized RTP packet about to be protected and sent, read in place.

    The fixed header (``marker``, ``payload_type``, ``sequence_number``,
    ``timestamp``, ``ssrc``) is read up front and is read-only: aiortc's sender
    decided it. Header extensions are read only when asked for
    (:attr:`extensions`), and steps add or replace them with
    :meth:`set_extension`. ``bytes(packet)`` is the original bytes when no step
    set one; otherwise only the extension block is rebuilt, every extension in
    ascending id order in aiortc's one- or two-byte form, and spliced between
    the packet's own CSRC list and payload. So a packet pays for a rewrite only
    when a step changes it, and never for a parse of its payload.
    """

    __slots__ = ("_csrc_end", "_payload_start", "_set", "data", "marker", "payload_type",
                 "sequence_number", "ssrc", "timestamp",
                 "transport_sequence_number")

    def __init__(self, data: bytes, csrc_end: int, payload_start: int) -> None:
        _, second, self.sequence_number, self.timestamp, self.ssrc = _FIXED.unpack_from(data)
        self.data = data
        self.marker = bool(second & 0x80)
        self.payload_type = second & 0x7F
        self._csrc_end = csrc_end
        self._payload_start = payload_start
        self._set: dict[int, bytes] = {}
        #: The transport-wide sequence number a step stamped on the packet
        #: (transport-cc), kept for that step's ``sent``.
        self.transport_sequence_number: int | None = None

    @classmethod
    def parse(cls, data: bytes) -> OutgoingRtp:
        """Read a serialized RTP packet; raises ``ValueError`` if it is not one."""
        if len(data) < _FIXED.size:
            raise ValueError(f"RTP packet of {len(data)} bytes; expected at least 12")
        first = data[0]
        if first >> 6 != 2:
            raise ValueError(f"RTP version {first >> 6}; expected 2")
        csrc_end = _FIXED.size + 4 * (first & 0x0F)
        if len(data) < csrc_end:
            raise ValueError("RTP CSRC list truncated")
        payload_start = csrc_end
        if first & 0x10:
            if len(data) < csrc_end + 4:
                raise ValueError("RTP header extension truncated")
            words = _EXTENSION_HEADER.unpack_from(data, csrc_end)[1]
            payload_start = csrc_end + 4 + 4 * words
            if len(data) < payload_start:
                raise ValueError("RTP header extension truncated")
        return cls(data, csrc_end, payload_start)

    @property
    def payload(self) -> bytes:
        """The payload, including any padding (the P bit stays in the first byte)."""
        return self.data[self._payload_start:]

    @property
    def payload_size(self) -> int:
        return len(self.data) - self._payload_start

    @property
    def extensions(self) -> Mapping[int, bytes]:
        """Header extension values by id, with what steps set; read-only (see
        :meth:`set_extension`). Raises ``ValueError`` if the packet's block is
        malformed."""
        extensions = self._own_extensions()
        extensions.update(self._set)
        return MappingProxyType(extensions)

    def set_extension(self, extension_id: int, value: bytes) -> None:
        """Add or replace header extension ``extension_id`` (1..255)."""
        if not 0 < extension_id < 256 or not len(value) < 256:
            raise ValueError(f"header extension id {extension_id} with {len(value)} bytes: "
                             "expected an id in 1..255 and at most 255 bytes")
        self._set[extension_id] = value

    def _own_extensions(self) -> dict[int, bytes]:
        if self._payload_start == self._csrc_end:
            return {}
        profile = _EXTENSION_HEADER.unpack_from(self.data, self._csrc_end)[0]
        return dict(unpack_header_extensions(
            profile, self.data[self._csrc_end + 4 : self._payload_start]))

    def _one_byte_elements(self) -> dict[int, bytes] | None:
        """The packet's own extensions as one-byte elements (header byte and value)
        by id, or None when its block is in another form or has ids 0 or 15."""
        data, pos, end = self.data, self._csrc_end + 4, self._payload_start
        elements: dict[int, bytes] = {}
        if end == self._csrc_end:
            return elements
        if _EXTENSION_HEADER.unpack_from(data, self._csrc_end)[0] != _ONE_BYTE:
            return None
        while pos < end:
            head = data[pos]
            if not head:  # padding
                pos += 1
                continue
            stop = pos + 2 + (head & 0x0F)
            if stop > end:
                raise ValueError("RTP one-byte header extension value is truncated")
            if not 0x10 <= head < 0xF0:
                return None
            elements[head >> 4] = data[pos:stop]
            pos = stop
        return elements

    def __bytes__(self) -> bytes:
        if not self._set:
            return self.data
        # The same bytes as aiortc's pack_header_extensions over all extensions in id
        # order; its one-byte form (ids 1..14, values of 1..16 bytes) done here with
        # whole elements, without unpacking and repacking the packet's own.
        elements = self._one_byte_elements()
        if elements is not None:
            for extension_id, value in self._set.items():
                size = len(value)
                if extension_id > 14 or not 0 < size <= 16:
                    elements = None
                    break
                elements[extension_id] = _BYTE[extension_id << 4 | size - 1] + value
        if elements is None:
            extensions = self._own_extensions()
            extensions.update(self._set)
            profile, block = pack_header_extensions(sorted(extensions.items()))
        else:
            profile = _ONE_BYTE
            block = b"".join([element for _, element in sorted(elements.items())])
            block += _PADDING[-len(block) % 4]
        data = self.data
        return b"".join((
            _BYTE[data[0] | 0x10], data[1 : self._csrc_end],
            _EXTENSION_HEADER.pack(profile, len(block) // 4), block,
            data[self._payload_start:],
        ))


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
