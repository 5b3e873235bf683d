"""FEC as steps on the seams: parity out after each frame, lost packets rebuilt on arrival.

- :class:`FecSend` (a ``TransportStep`` on the server): after each media
  packet, hands the packet to the :class:`~cloudarcade.rtc.fec.FecEncoder`
  and returns the frame's parity packets after its marker packet; the seam
  sends them through every step, so the transport-cc step numbers them and the
  congestion controller sees them like media. ``columns_for(now)`` (the
  :class:`~cloudarcade.cc.fec_policy.FecPolicy`) says how many per frame.
  :attr:`FecSend.media_share` is the part of the target left for media.
- :class:`FecReceive` (a ``ReceiveStep`` on the client, after transport-cc
  feedback and before anything that drops unknown payload types): takes the
  parity packets out of the chain and injects each rebuilt media packet after
  itself, so NACK and reassembly see it as received (and transport-cc, which
  reported it lost, does not).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from cloudarcade.rtc.fec import FecDecoder, FecEncoder, FecError, MediaPacket
from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.seam import ReceiveStep, RtpIn, TransportStep

logger = logging.getLogger(__name__)

# The media share is measured over about this long.
_SHARE_WINDOW_S = 1.0
# Never give parity more than this much of the target, whatever frame sizes make it cost
# (the policy's MAX_PARITY_RATIO keeps it near a third).
MIN_MEDIA_SHARE = 0.6


class FecSend(TransportStep):
    """Parity packets after each protected frame's last packet."""

    def __init__(
        self,
        encoder: FecEncoder,
        columns_for: Callable[[], int],
        *,
        on_parity: Callable[[int, int], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self._columns_for = columns_for
        self._on_parity = on_parity
        self._media = 0.0
        self._parity = 0.0
        self._updated: float | None = None

    @property
    def columns(self) -> int:
        """The parity packets per frame the encoder uses from its next frame."""
        return self.encoder.columns

    @property
    def media_share(self) -> float:
        """Media bytes over media and parity bytes sent lately (1: no parity)."""
        total = self._media + self._parity
        share = self._media / total if total else 1.0
        return max(share, MIN_MEDIA_SHARE)

    def follow(self, packet: OutgoingRtp, now: float) -> list[bytes]:
        encoder = self.encoder
        if packet.ssrc != encoder.media_ssrc:
            return []
        if not encoder.in_frame:  # the encoder reads the count once a frame
            encoder.columns = self._columns_for()
        parity = encoder.push(packet.data)
        self._count(len(packet.data), parity, now)
        return parity

    def _count(self, media: int, parity: list[bytes], now: float) -> None:
        if self._updated is not None and now > self._updated:
            keep = math.exp(-(now - self._updated) / _SHARE_WINDOW_S)
            self._media *= keep
            self._parity *= keep
        self._updated = now
        self._media += media
        if parity:
            size = sum(len(p) for p in parity)
            self._parity += size
            if self._on_parity is not None:
                self._on_parity(len(parity), size)


class FecReceive(ReceiveStep):
    """Parity in, rebuilt media packets out (injected after this step)."""

    injects = True

    def __init__(
        self,
        *,
        payload_type: int,
        ssrc: int,
        codecs: dict[int, RTCRtpCodecParameters],
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = ssrc
        self._codecs = codecs
        self.decoder: FecDecoder | None = None
        self._made: list[RtpIn] = []
        self.parity_errors = 0

    @property
    def recovered(self) -> int:
        return self.decoder.recovered if self.decoder is not None else 0

    @property
    def parity_received(self) -> int:
        return self.decoder.parity_received if self.decoder is not None else 0

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        packet = item.packet
        if packet.ssrc == self.ssrc and packet.payload_type == self.payload_type:
            if self.decoder is not None:
                try:
                    self._rebuilt(self.decoder.parity(packet.payload))
                except FecError as exc:
                    self.parity_errors += 1
                    logger.debug("FEC parity dropped: %s", exc)
            return None
        if item.codec is None or item.codec.name.lower() == "rtx":
            return item
        if self.decoder is None:
            self.decoder = FecDecoder(packet.ssrc)
        self._rebuilt(self.decoder.media(MediaPacket(
            packet.sequence_number, packet.ssrc, packet.marker << 7 | packet.payload_type,
            packet.timestamp, packet.payload)))
        return item

    def injected(self) -> list[RtpIn]:
        made, self._made = self._made, []
        return made

    def _rebuilt(self, packets: list[MediaPacket]) -> None:
        for packet in packets:
            rtp = RtpPacket.parse(bytes(packet))
            self._made.append(RtpIn(rtp, self._codecs.get(rtp.payload_type)))
