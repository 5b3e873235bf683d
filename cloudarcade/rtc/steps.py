"""Steps that do what aiortc's own receiver and sender do, one concern each.

Receive steps (for :class:`~cloudarcade.rtc.seam.ReceiverSeam`), in the order
aiortc 1.16's ``RTCRtpReceiver._handle_rtp_packet`` does the same work:
:class:`RembEstimate`, :class:`Statistics`, :class:`RtxUnwrap`.
RTCP steps (for :class:`~cloudarcade.rtc.seam.SenderSeam`):
:class:`Heard`, :class:`KeyframeRequests`, :class:`NackReceived`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiortc.codecs import is_rtx
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    unwrap_rtx,
)

from cloudarcade.rtc.packet import Feedback, Remb
from cloudarcade.rtc.seam import ReceiveStep, RtcpStep, RtpIn


class RembEstimate(ReceiveStep):
    """aiortc's receive-side bandwidth estimate, sent back as REMB.

    It reads the abs-send-time header extension the sender writes; packets
    without it are ignored, as aiortc does.
    """

    def __init__(self) -> None:
        self._estimator = RemoteBitrateEstimator()
        self._pending: list[Feedback] = []
        self.last_estimate: int | None = None

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        packet = item.packet
        abs_send_time = packet.extensions.abs_send_time
        if abs_send_time is not None:
            remb = self._estimator.add(
                abs_send_time=abs_send_time,
                arrival_time_ms=int(now * 1000),
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            if remb is not None:
                self.last_estimate = remb[0]
                self._pending.append(Remb(*remb))
        return item

    def poll(self, now: float) -> Iterable[Feedback]:
        out, self._pending = self._pending, []
        return out


class Statistics(ReceiveStep):
    """Feeds aiortc's per-SSRC ``StreamStatistics`` (receiver reports, getStats).

    Drops packets of an unknown payload type, as aiortc does.
    """

    def __init__(self, streams: dict[int, Any]) -> None:
        self._streams = streams

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        if item.codec is None:
            return None
        packet = item.packet
        stats = self._streams.get(packet.ssrc)
        if stats is None:
            stats = self._streams[packet.ssrc] = StreamStatistics(item.codec.clockRate)
        stats.add(packet)
        return item


class RtxUnwrap(ReceiveStep):
    """Turns an RTX retransmission (RFC 4588) back into the packet it repairs."""

    def __init__(self, rtx_ssrc: dict[int, int], codecs: dict[int, RTCRtpCodecParameters]) -> None:
        self._rtx_ssrc = rtx_ssrc
        self._codecs = codecs

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        codec, packet = item.codec, item.packet
        if codec is None or not is_rtx(codec):
            return item
        original_ssrc = self._rtx_ssrc.get(packet.ssrc)
        apt = codec.parameters.get("apt")
        if (original_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int)
                or apt not in self._codecs):
            return None
        return RtpIn(unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc), self._codecs[apt])


class Heard(RtcpStep):
    """Calls ``on_heard(now)`` for every RTCP packet: the peer is alive."""

    def __init__(self, on_heard: Callable[[float], None]) -> None:
        self._on_heard = on_heard

    def rtcp(self, packet: AnyRtcpPacket, now: float) -> None:
        self._on_heard(now)


class KeyframeRequests(RtcpStep):
    """Calls ``on_request("pli" | "fir")`` for each PLI/FIR.

    aiortc's sender turns them into a flag only its own encoder reads; a
    stack with its own encoder must see them itself.
    """

    def __init__(self, on_request: Callable[[str], None]) -> None:
        self._on_request = on_request

    def rtcp(self, packet: AnyRtcpPacket, now: float) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self._on_request("pli" if packet.fmt == RTCP_PSFB_PLI else "fir")


class NackReceived(RtcpStep):
    """Calls ``on_nack(count)`` with the number of packets each NACK asks for."""

    def __init__(self, on_nack: Callable[[int], None]) -> None:
        self._on_nack = on_nack

    def rtcp(self, packet: AnyRtcpPacket, now: float) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self._on_nack(len(packet.lost))
