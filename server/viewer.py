"""One viewer of a session: its peer connection, video track and data channels.

A session encodes once; each viewer's RTP sender packetizes the same encoded
packets. A viewer is a player (its inputs reach the game as player N) or a
spectator (watches only). The viewer wires its parts together: the sender's
RTCP steps (:mod:`cloudarcade.rtc`), its liveness deadlines
(:mod:`~cloudarcade.server.liveness`), its metrics feed
(:mod:`~cloudarcade.server.viewer_stats`), the netsim relay
(:mod:`~cloudarcade.server.relaying`) and its lifecycle
(:mod:`~cloudarcade.server.lifecycle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc import RTCDataChannel, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from cloudarcade import protocol
from cloudarcade.cc import CcState
from cloudarcade.cc.negotiation import add_transport_cc_feedback
from cloudarcade.ice import create_peer_connection
from cloudarcade.protocol import FRAMES_CHANNEL, FrameTiming
from cloudarcade.rtc import extensions
from cloudarcade.rtc.seam import SenderSeam, TransportSeam
from cloudarcade.rtc.steps import Heard, KeyframeRequests, NackReceived
from cloudarcade.server.fec import ViewerFec
from cloudarcade.server.lifecycle import VIEWER_TRANSITIONS, CloseReason, Lifecycle, ViewerState
from cloudarcade.server.limits import TokenBucket
from cloudarcade.server.liveness import Liveness
from cloudarcade.server.pipeline import RenderedFrame
from cloudarcade.server.relaying import ViewerRelay
from cloudarcade.server.sdp_checks import OfferError
from cloudarcade.server.viewer_stats import ViewerStats

if TYPE_CHECKING:
    from cloudarcade.server.session import GameSession

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


def _codec_preferences(rtp_codec: str) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == f"video/{rtp_codec.lower()}"]
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen + rtx


class Viewer:
    """A peer connection watching (and maybe playing) a :class:`GameSession`."""

    def __init__(
        self,
        session: GameSession,
        *,
        player: int | None,
        bind: str,
        on_closed: Callable[[Viewer, CloseReason], None],
    ) -> None:
        self.id = next(_ids)
        self.session = session
        self.player = player  # None: spectator
        self._on_closed = on_closed
        self.lifecycle = Lifecycle(ViewerState.NEW, VIEWER_TRANSITIONS)
        self._closing: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        limits = session.limits
        now = time.monotonic()
        self._inputs = TokenBucket(limits.input_rate, limits.input_burst, now)
        # Key events arrive on both input channels (docs/protocol.md): apply the first copy.
        self._dedupe = protocol.KeyDedupe()
        # Any RTCP from the client (receiver reports, NACK, PLI) proves it is alive.
        self.liveness = Liveness(ice_timeout=limits.ice_timeout,
                                 silence_timeout=limits.liveness_timeout, start=now)
        self._liveness_changed = asyncio.Event()
        self.stats = ViewerStats(session.metrics, netsim=session.netsim_metrics)
        self.pc = create_peer_connection(bind)
        self._frames_channel: RTCDataChannel | None = None
        self._sender: RTCRtpSender | None = None
        self.relay: ViewerRelay | None = None  # the netsim relay, when the session has a profile
        self.track = session.stack.create_track(on_sent=self._frame_sent,
                                                on_overflow=self._backlog_overflow)
        self.fec: ViewerFec | None = None  # when the client negotiated it (docs/fec.md)
        self.congestion = session.stack.create_congestion(session.options, self._cc_update)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def role(self) -> str:
        return "spectator" if self.player is None else "player"

    def __repr__(self) -> str:
        return f"Viewer({self.id} of session {self.session.id}, {self.role})"

    async def accept(self, offer: RTCSessionDescription, rtp_codec: str) -> RTCSessionDescription:
        """Answer ``offer`` (already checked by ``check_offer_sdp``); OfferError if refused."""
        # The transceiver exists before the offer is applied, so that the offer's
        # video section binds to it and codecs are negotiated with our
        # preference (aiortc fixes the codec list in setRemoteDescription).
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        transceiver.setCodecPreferences(_codec_preferences(rtp_codec))
        self._sender = transceiver.sender
        self._hook_rtcp(transceiver.sender)
        if self.session.profile is not None:
            self.relay, offer = await ViewerRelay.for_offer(
                offer, self.session.profile, self.session.bind, OfferError,
                on_lost=lambda: self.close(CloseReason.FAILED),
            )
        try:
            await self.pc.setRemoteDescription(offer)
        except Exception as exc:  # aiortc raises ValueError, OperationError, ...
            raise OfferError(f"sdp: rejected by aiortc: {exc or type(exc).__name__}") from None
        stack = self.session.stack
        extension_ids = extensions.negotiate(transceiver, offer.sdp, stack.header_extensions)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        # After both descriptions: aiortc has moved the sender onto the bundled transport.
        transport_steps = stack.transport_steps(extension_ids)
        cc_step = None
        if self.congestion is not None:
            cc_step = self.congestion.create_step(extension_ids)
            transport_steps.append(cc_step)
        local = self.pc.localDescription
        self.fec, sdp = ViewerFec.negotiate(
            self.session.options.fec, offer.sdp, local.sdp, cc_step,
            media_ssrc=transceiver.sender._ssrc, metrics=self.session.metrics, viewer=self.id)
        if self.fec is not None:
            transport_steps.append(self.fec.step)
        if transport_steps:
            seam = TransportSeam(transceiver.sender.transport)
            seam.steps += transport_steps
            seam.errors.on_error = lambda: self.session.metrics.step_error("transport")
            seam.install()
        if self.congestion is not None and extensions.TRANSPORT_CC in extension_ids:
            sdp = add_transport_cc_feedback(sdp, offer.sdp)
        if self.relay is not None:
            sdp = await self.relay.answer(sdp, OfferError)
        self.lifecycle.to(ViewerState.ANSWERED)
        self._watchdog = asyncio.ensure_future(self._watch())
        return RTCSessionDescription(sdp=sdp, type=local.type)

    async def _watch(self) -> None:
        """Close the viewer when :class:`Liveness` says its client is gone."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                now = time.monotonic()
                verdict = self.liveness.verdict(now)
                if verdict is not None:
                    logger.warning("%r: %s (ICE state %s)", self, verdict,
                                   self.pc.iceConnectionState)
                    self.close(CloseReason.TIMEOUT)
                    return
                at = self.liveness.next_wakeup(now)
                self._liveness_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._liveness_changed.wait(),
                                           None if at is None else max(at - now, 0.0))

    def _hook_rtcp(self, sender: RTCRtpSender) -> None:
        # aiortc's sender turns PLI/FIR into a flag that only its own encoder
        # reads; with pre-encoded packets we must see them ourselves.
        seam = SenderSeam(sender)
        seam.steps += [
            Heard(self._heard),
            KeyframeRequests(self._keyframe_requested),
            NackReceived(self.session.metrics.nack),
            *self.session.stack.rtcp_steps(),
        ]
        seam.errors.on_error = lambda: self.session.metrics.step_error("sender")
        seam.install()

    def _cc_update(self, state: CcState) -> None:
        # FEC parity comes out of the target: the encoder gets the rest.
        share = self.fec.media_share if self.fec is not None else 1.0
        self.session.cc_target(self, state.target * share)
        self.session.metrics.cc_update(self.id, state.target, state.estimate,
                                       state.queueing_delay, state.predicted_queueing)

    def _heard(self, now: float) -> None:
        self.liveness.heard(now)

    def _keyframe_requested(self, reason: str) -> None:
        self.session.metrics.pli()
        self.session.request_keyframe(reason)

    # Media from the session (event loop thread).
    def put(self, frame: RenderedFrame) -> None:
        self.track.put(frame)

    def _backlog_overflow(self, dropped: int) -> None:
        for _ in range(dropped):
            self.session.metrics.frame_dropped("send")
        logger.warning("%r: sender backlog of %d frames flushed; forcing a keyframe", self, dropped)
        self.session.request_keyframe("pli")

    def _frame_sent(self, timing: FrameTiming) -> None:
        if self.congestion is not None:
            state = self.congestion.state()
            timing.cc_target = round(state.target)
            timing.cc_queueing = round(state.queueing_delay, 4)
            sent = self.congestion.last_frame_sent
            last = timing.last_packet_sent
            if (sent is not None and last is not None and timing.packetized is not None
                    and timing.packetized <= sent <= last):
                timing.last_packet_sent = sent  # the marker packet's own send time
        self.session.frame_sent(timing)
        channel = self._frames_channel
        if channel is not None and channel.readyState == "open":
            channel.send(timing.to_json())

    # Inputs and reports.
    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == FRAMES_CHANNEL:
            self._frames_channel = channel
        elif channel.label in (protocol.CHANNEL_EVENTS, protocol.CHANNEL_STATE):
            channel.on("message", self._on_message)
        else:
            logger.info("%r: ignoring unknown data channel %r", self, channel.label)

    def _on_message(self, data: str | bytes) -> None:
        received = time.monotonic()
        # Before parsing: a flood must cost as little as possible.
        if not self._inputs.take(received):
            self.session.input_rate_limited(self._inputs.rate, self._inputs.burst)
            return
        try:
            message = protocol.parse(data)
        except protocol.ProtocolError as exc:
            self.session.input_rejected(exc)
            return
        if isinstance(message, protocol.StatsReport):
            self.stats.client_report(message)
        elif self.player is not None:
            verdict = self._dedupe.accept(message)
            if verdict is protocol.Verdict.APPLY:
                self.session.input_received(message, self.player, received)
            else:
                self.session.input_discarded(verdict)

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("%r: connection %s", self, state)
        if state == "connected":
            if not self.lifecycle.can(ViewerState.CONNECTED):
                return  # closing already
            self.lifecycle.to(ViewerState.CONNECTED)
            self.liveness.connected(time.monotonic())
            self._liveness_changed.set()
            assert self._sender is not None
            self._stats_task = asyncio.ensure_future(self.stats.run(self._sender, self.relay))
            self.session.viewer_connected(self)
        elif state in ("failed", "closed"):
            self.close(CloseReason.FAILED if state == "failed" else CloseReason.CLOSED)
        else:
            self.liveness.disconnected()
            self._liveness_changed.set()

    def close(self, reason: CloseReason) -> asyncio.Task[None]:
        """Start closing (idempotent); await the returned task to wait for it."""
        reason = CloseReason(reason)  # a plain string is checked against the known reasons
        if self._closing is None:
            self.lifecycle.to(ViewerState.CLOSING)
            self._closing = asyncio.ensure_future(self._close(reason))
        return self._closing

    async def _close(self, reason: CloseReason) -> None:
        logger.info("%r: closing (%s)", self, reason.value)
        try:
            for task in (self._stats_task, self._watchdog):
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.track.stop()
            if self.fec is not None:
                self.fec.close()
            await self.pc.close()
            if self.relay is not None:
                await self.relay.close()
        except Exception:
            logger.exception("%r: error while closing", self)
        finally:
            self.lifecycle.to(ViewerState.CLOSED)
            self._on_closed(self, reason)
