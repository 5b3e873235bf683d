"""One streaming session: a peer connection, its game, its pipeline and its channels."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket

from cloudarcade import protocol
from cloudarcade.encoder import EncodedFrame, create_encoder, rtp_codec_for
from cloudarcade.ice import create_peer_connection
from cloudarcade.server.games import create_game
from cloudarcade.server.options import SessionOptions
from cloudarcade.server.pipeline import Pipeline, RawFrame
from cloudarcade.server.timing import FRAMES_CHANNEL, FrameTiming
from cloudarcade.server.tracks import PacketTrack, StockTrack

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


class OfferError(ValueError):
    """The offer cannot be answered; the message says why and what was expected."""


def offered_video_codecs(sdp: str) -> set[str]:
    """Upper-case codec names offered in the SDP's video sections."""
    names: set[str] = set()
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video:
            match = re.match(r"a=rtpmap:\d+ ([\w.-]+)/", line)
            if match:
                names.add(match[1].upper())
    return names


def _codec_preferences(rtp_codec: str) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == f"video/{rtp_codec.lower()}"]
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen + rtx


class Session:
    """Serves one client: answers its offer, runs its game, streams its video.

    ``on_closed`` is called once, with the reason, when the session ends.
    """

    def __init__(
        self,
        options: SessionOptions,
        *,
        bind: str = "127.0.0.1",
        on_closed: Callable[[Session, str], None] | None = None,
    ) -> None:
        self.id = next(_ids)
        self.options = options
        self.created = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._on_closed = on_closed
        self._closing: asyncio.Task[None] | None = None
        self.pc = create_peer_connection(bind)
        self.game = create_game(options.game, width=options.width, height=options.height,
                                seed=options.seed)
        self._frames_channel: RTCDataChannel | None = None
        self._rejected_logged: set[str] = set()
        self.counters: dict[str, int] = {
            "inputs": 0, "inputs_rejected": 0, "frames_sent": 0, "keyframe_requests": 0,
            "nacks": 0, "backlog_flushes": 0,
        }
        self.track: PacketTrack | StockTrack
        if options.stack == "stock":
            self.track = StockTrack(on_sent=self._frame_sent)
            self.pipeline = Pipeline(self.game, options.width, options.height, options.fps,
                                     encoder=None, on_raw=self._raw_from_thread)
        else:
            self.track = PacketTrack(on_sent=self._frame_sent, on_overflow=self._backlog_overflow)
            encoder = create_encoder(options.codec, options.encoder_config())
            self.pipeline = Pipeline(self.game, options.width, options.height, options.fps,
                                     encoder=encoder, on_encoded=self._encoded_from_thread)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"Session({self.id}, {self.options.game}, {self.options.resolution})"

    async def accept(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer ``offer``; raises OfferError when it can't be served."""
        rtp_codec = rtp_codec_for(self.options.codec)
        offered = offered_video_codecs(offer.sdp)
        if not offered:
            raise OfferError("offer has no video section; expected a recvonly video transceiver")
        if rtp_codec not in offered:
            raise OfferError(
                f"offer has no {rtp_codec} video codec (offered: {', '.join(sorted(offered))}); "
                f"choose a codec the client supports"
            )
        # The transceiver exists before the offer is applied, so that the offer's
        # video section binds to it and codecs are negotiated with our
        # preference (aiortc fixes the codec list in setRemoteDescription).
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        transceiver.setCodecPreferences(_codec_preferences(rtp_codec))
        self._hook_rtcp(transceiver.sender)
        try:
            await self.pc.setRemoteDescription(offer)
        except Exception as exc:  # aiortc raises ValueError, OperationError, ...
            raise OfferError(f"offer SDP rejected: {exc}") from None
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        local = self.pc.localDescription
        return RTCSessionDescription(sdp=local.sdp, type=local.type)

    def _hook_rtcp(self, sender: RTCRtpSender) -> None:
        # aiortc's sender turns PLI/FIR into a flag that only its own encoder
        # reads; with pre-encoded packets we must see them ourselves.
        original = sender._handle_rtcp_packet

        async def handle(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.counters["keyframe_requests"] += 1
                self.pipeline.request_keyframe()
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.counters["nacks"] += len(packet.lost)
            await original(packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]

    # Pipeline callbacks arrive on worker threads.
    def _encoded_from_thread(self, encoded: EncodedFrame, timing: FrameTiming) -> None:
        assert isinstance(self.track, PacketTrack)
        self._loop.call_soon_threadsafe(self.track.put, encoded, timing)

    def _raw_from_thread(self, raw: RawFrame) -> None:
        assert isinstance(self.track, StockTrack)
        self._loop.call_soon_threadsafe(self.track.put, raw)

    def _backlog_overflow(self, dropped: int) -> None:
        self.counters["backlog_flushes"] += 1
        logger.warning("%r: sender backlog of %d frames flushed; forcing a keyframe", self, dropped)
        self.pipeline.request_keyframe()

    def _frame_sent(self, timing: FrameTiming) -> None:
        self.counters["frames_sent"] += 1
        channel = self._frames_channel
        if channel is not None and channel.readyState == "open":
            channel.send(timing.to_json())

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == FRAMES_CHANNEL:
            self._frames_channel = channel
        elif channel.label in (protocol.CHANNEL_EVENTS, protocol.CHANNEL_STATE):
            channel.on("message", self._on_input_message)
        else:
            logger.info("%r: ignoring unknown data channel %r", self, channel.label)

    def _on_input_message(self, data: str | bytes) -> None:
        received = time.monotonic()
        try:
            message = protocol.parse(data)
        except protocol.ProtocolError as exc:
            self.counters["inputs_rejected"] += 1
            if exc.reason not in self._rejected_logged:
                # Once per reason per session: a bad client must not flood the log.
                self._rejected_logged.add(exc.reason)
                logger.warning("%r: input rejected (%s): %s", self, exc.reason, exc)
            return
        if isinstance(message, protocol.StatsReport):
            return
        self.counters["inputs"] += 1
        self.pipeline.push_input(message, 0, received)

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("%r: connection %s", self, state)
        if state == "connected":
            self.pipeline.start()
        elif state in ("failed", "closed"):
            self.close("failed" if state == "failed" else "closed")

    def close(self, reason: str) -> asyncio.Task[None]:
        """Start closing (idempotent); await the returned task to wait for it."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))
        return self._closing

    async def _close(self, reason: str) -> None:
        logger.info("%r: closing (%s)", self, reason)
        try:
            await asyncio.to_thread(self.pipeline.stop)
            self.track.stop()
            await self.pc.close()
        except Exception:
            logger.exception("%r: error while closing", self)
        finally:
            if self._on_closed is not None:
                self._on_closed(self, reason)
