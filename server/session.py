"""A game session: one game, one pipeline, one encoder, any number of viewers.

The session encodes once; every viewer's sender gets the same packets. Player
viewers' inputs reach the game (player 0, 1, ...); spectators only watch. The
session ends when its last viewer leaves.

The game, the encoder and the pipeline are built when the first viewer
connects, in a worker thread: an offer that is refused, or answered but never
connected, costs no game and no encoder (at 4K these took ~420 ms of CPU and
hundreds of MB). Viewers who join later share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from aiortc import RTCSessionDescription

from cloudarcade import protocol
from cloudarcade.encoder import EncodedFrame, rtp_codec_for
from cloudarcade.metrics import METRICS, Metrics, NetsimMetrics, SessionMetrics
from cloudarcade.metrics.definitions import RATE_LIMITED
from cloudarcade.netsim import Profile
from cloudarcade.protocol import FrameTiming
from cloudarcade.server.congestion import SkipRun, link_full
from cloudarcade.server.games import Game, create_game, game_class
from cloudarcade.server.ladder import APP_LIMITED, Ladder, Rung, build_rungs
from cloudarcade.server.lifecycle import (
    SESSION_TRANSITIONS,
    CloseReason,
    Lifecycle,
    SessionState,
)
from cloudarcade.server.limits import Limits
from cloudarcade.server.options import SessionOptions
from cloudarcade.server.pipeline import LumaSampler, Pipeline, RenderedFrame
from cloudarcade.server.sdp_checks import OfferError
from cloudarcade.server.viewer import Viewer
from cloudarcade.stacks import create_stack
from cloudarcade.stages import stage_durations

logger = logging.getLogger(__name__)

_ids = itertools.count(1)

__all__ = ["GameSession", "OfferError"]


class GameSession:
    """Runs one game for its viewers.

    ``on_closed`` is called once, with the reason, when the session ends.
    """

    def __init__(
        self,
        options: SessionOptions,
        *,
        bind: str = "127.0.0.1",
        profile: Profile | None = None,
        sample_dir: Path | None = None,
        sample_every: int = 60,
        metrics: Metrics = METRICS,
        limits: Limits | None = None,
        on_closed: Callable[[GameSession, CloseReason], None] | None = None,
    ) -> None:
        self.id = next(_ids)
        self.share = secrets.token_urlsafe(12)
        self.options = options
        self.bind = bind
        self.profile = profile
        self.created = time.monotonic()
        self.limits = limits or Limits()
        self.last_input = self.created
        self._idle_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._on_closed = on_closed
        self.lifecycle = Lifecycle(SessionState.WAITING, SESSION_TRANSITIONS)
        self._closing: asyncio.Task[None] | None = None
        self.rtp_codec = rtp_codec_for(options.codec)
        self.max_players = game_class(options.game).max_players
        self.metrics = SessionMetrics(metrics, game=options.game, codec=options.codec,
                                      profile=options.profile_label,
                                      cc="stock" if options.stack == "stock" else options.cc)
        self.netsim_metrics = (
            NetsimMetrics(metrics, profile=options.profile_label) if profile is not None else None
        )
        self.viewers: dict[int, Viewer] = {}
        self._rejected_logged: set[str] = set()
        self._keyframe_reason = "start"
        self._encoded_bytes = 0
        self._bitrate_since = time.monotonic()
        self._frame_bits: float | None = None  # written by the encoder thread
        self._sample_dir = sample_dir
        self._sample_every = sample_every
        self.stack = create_stack(options.stack)
        # Built when the first viewer connects (see the module docstring).
        self.pipeline: Pipeline | None = None
        self._starting: asyncio.Task[None] | None = None
        self._cc_targets: dict[int, float] = {}
        self._skips = SkipRun()  # the encoder thread's only
        # The resolution/frame-rate ladder: with an adapting controller and an
        # encoder that follows it (set once the pipeline is built).
        self.ladder: Ladder | None = None

    def __repr__(self) -> str:
        return f"GameSession({self.id}, {self.options.game}, {self.options.resolution})"

    @property
    def game(self) -> Game | None:
        """The game, once the session streams."""
        return self.pipeline.game if self.pipeline is not None else None

    @property
    def connecting(self) -> bool:
        """No viewer has connected yet: nothing is rendered or encoded."""
        return self._starting is None

    def free_player_slot(self) -> int | None:
        taken = {v.player for v in self.viewers.values() if v.player is not None}
        for slot in range(self.max_players):
            if slot not in taken:
                return slot
        return None

    async def add_viewer(
        self, offer: RTCSessionDescription, role: str
    ) -> tuple[Viewer, RTCSessionDescription]:
        """Answer a viewer's offer; a player gets the next free slot, else it spectates."""
        player = self.free_player_slot() if role == "player" else None
        viewer = Viewer(self, player=player, bind=self.bind, on_closed=self._viewer_closed)
        self.viewers[viewer.id] = viewer
        try:
            answer = await viewer.accept(offer, self.rtp_codec)
        except BaseException:
            await viewer.close(CloseReason.REJECTED)
            raise
        return viewer, answer

    def viewer_connected(self, viewer: Viewer) -> None:
        if self.lifecycle.state is SessionState.WAITING:
            self.lifecycle.to(SessionState.RUNNING)
            self._starting = asyncio.ensure_future(self._start_media())
        else:
            # A new viewer can only start decoding at a keyframe (the first
            # frame of a pipeline still being built is one anyway).
            self.request_keyframe("start")

    async def _start_media(self) -> None:
        """Build the game, encoder and pipeline off the event loop, then start them."""
        try:
            pipeline = await asyncio.to_thread(self._build_pipeline)
        except Exception:
            logger.exception("%r: cannot start the game and encoder", self)
            self.close(CloseReason.FAILED)
            return
        self.pipeline = pipeline
        options = self.options
        if options.ladder and options.cc != "none" and pipeline.sink.adapts:
            self.ladder = Ladder(build_rungs(options.width, options.height, options.fps))
            self.metrics.rung(0)
        self._apply_cc_targets()  # targets set while the pipeline was being built
        if self._closing is not None:
            return  # _close stops it
        pipeline.start()
        if self.limits.idle_timeout > 0 and self._idle_task is None:
            self.last_input = time.monotonic()
            self._idle_task = asyncio.ensure_future(self._watch_idle())

    def _build_pipeline(self) -> Pipeline:
        options = self.options
        game = create_game(options.game, width=options.width, height=options.height,
                           seed=options.seed)
        sampler = None
        if self._sample_dir is not None:
            sampler = LumaSampler(self._sample_dir / f"session-{self.id}", self._sample_every)
        sink = self.stack.create_sink(options, self._frame_from_thread,
                                      self.metrics.frame_dropped, self._encoded_in_thread,
                                      link_full=self._link_full)
        return Pipeline(
            game, options.width, options.height, options.fps,
            sink=sink,
            on_drop=self.metrics.frame_dropped,
            on_rendered=self._rendered_in_thread,
            on_applied=self.metrics.input_applied,
            sampler=sampler,
        )

    def _viewer_closed(self, viewer: Viewer, reason: CloseReason) -> None:
        self.viewers.pop(viewer.id, None)
        self.metrics.cc_viewer_gone(viewer.id)
        if self._cc_targets.pop(viewer.id, None) is not None:
            self._apply_cc_targets()
        if not self.viewers:
            self.close(reason)

    # Congestion control (event loop thread, except _link_full).
    def cc_target(self, viewer: Viewer, target: float) -> None:
        """A viewer's controller moved its target: the encoder follows the slowest viewer."""
        self._cc_targets[viewer.id] = target
        self._apply_cc_targets()

    def _apply_cc_targets(self) -> None:
        pipeline = self.pipeline
        if not self._cc_targets or pipeline is None:
            return
        target = min(self._cc_targets.values())
        pipeline.sink.set_bitrate(target)
        if self.ladder is not None:
            frame_bits = self._frame_bits
            app_limited = (frame_bits is not None
                           and frame_bits < APP_LIMITED * target / pipeline.rung.fps)
            rung = self.ladder.update(target, time.monotonic(), app_limited=app_limited)
            if rung != pipeline.rung:
                self._step(pipeline, rung, target)

    def _step(self, pipeline: Pipeline, rung: Rung, target: float) -> None:
        """Render and encode at ``rung`` from the next tick (the encoder reopens: a keyframe)."""
        assert self.ladder is not None
        logger.info("%r: %s → %s at a target of %.2f Mbit/s", self, pipeline.rung, rung,
                    target / 1e6)
        self._keyframe_reason = "rung"
        pipeline.set_rung(rung)
        self.metrics.rung(self.ladder.index)

    def _link_full(self) -> bool:
        """Called by the encoder thread: skip this frame rather than queue it."""
        now = time.monotonic()
        return self._skips.allow(link_full(
            ((v.liveness.last_heard, v.congestion)
             for v in list(self.viewers.values()) if v.congestion is not None),
            now,
        ))

    def request_keyframe(self, reason: str) -> None:
        self._keyframe_reason = reason
        if self.pipeline is not None:
            self.pipeline.request_keyframe()

    # Inputs (event loop thread).
    def input_received(self, event: protocol.InputEvent, player: int, received: float) -> None:
        self.metrics.input_received()
        self.last_input = received
        if self.pipeline is not None:  # before the first frame there is nothing to steer
            self.pipeline.push_input(event, player, received)

    def input_discarded(self, verdict: protocol.Verdict) -> None:
        """A key event copy the viewer's :class:`~cloudarcade.protocol.KeyDedupe` did not apply."""
        self.metrics.input_discarded(verdict.value)

    def input_rejected(self, error: protocol.ProtocolError) -> None:
        self._reject(error.reason, str(error))

    def input_rate_limited(self, rate: float, burst: float) -> None:
        self._reject(RATE_LIMITED, f"more than {rate:g} messages/s (burst {burst:g}); dropped")

    def _reject(self, reason: str, message: str) -> None:
        self.metrics.input_rejected(reason)
        if reason not in self._rejected_logged:
            # Once per reason per session: a bad client must not flood the log.
            self._rejected_logged.add(reason)
            logger.warning("%r: input rejected (%s): %s", self, reason, message)

    async def _watch_idle(self) -> None:
        """Close the session when no player input arrived for ``limits.idle_timeout``."""
        timeout = self.limits.idle_timeout
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                idle = time.monotonic() - self.last_input
                if idle >= timeout:
                    logger.info("%r: no input for %.0f s", self, idle)
                    self.close(CloseReason.TIMEOUT)
                    return
                await asyncio.sleep(timeout - idle + 0.01)

    # Pipeline callbacks arrive on worker threads.
    def _rendered_in_thread(self, timing: FrameTiming) -> None:
        self.metrics.thread_cpu()
        self.metrics.frame_rendered(timing.render_end - timing.sim_end,
                                    timing.convert_end - timing.render_end)

    def _encoded_in_thread(self, encoded: EncodedFrame) -> None:
        self.metrics.thread_cpu()
        reason = None
        if encoded.keyframe:
            reason, self._keyframe_reason = self._keyframe_reason, "interval"
        self.metrics.frame_encoded(encoded.encode_time, encoded.size, reason)
        self._encoded_bytes += encoded.size
        # Mean frame size over about the last 20 frames (frames skipped at the
        # source do not lower it, as they lower the bitrate); the ladder reads it.
        bits = encoded.size * 8.0
        previous = self._frame_bits
        self._frame_bits = bits if previous is None else previous + (bits - previous) / 20
        now = time.monotonic()
        if now - self._bitrate_since >= 1.0:
            actual = self._encoded_bytes * 8 / (now - self._bitrate_since)
            target = min(self._cc_targets.values(), default=self.options.bitrate)
            self.metrics.bitrate(target, actual)
            self._encoded_bytes, self._bitrate_since = 0, now

    def _frame_from_thread(self, frame: RenderedFrame) -> None:
        self._loop.call_soon_threadsafe(self._fan_out, frame)

    def _fan_out(self, frame: RenderedFrame) -> None:
        for i, viewer in enumerate(list(self.viewers.values())):
            # Each viewer stamps its own send times on its own copy.
            viewer.put(frame if i == 0 else frame.copy())

    def frame_sent(self, timing: FrameTiming) -> None:
        """A viewer's sender finished sending a frame."""
        self.metrics.frame_sent()
        self.metrics.stages(stage_durations(timing.stamps()))

    def close(self, reason: CloseReason) -> asyncio.Task[None]:
        """Start closing (idempotent); await the returned task to wait for it."""
        reason = CloseReason(reason)  # a plain string is checked against the known reasons
        if self._closing is None:
            self.lifecycle.to(SessionState.CLOSING)
            self._closing = asyncio.ensure_future(self._close(reason))
        return self._closing

    async def _close(self, reason: CloseReason) -> None:
        logger.info("%r: closing (%s)", self, reason.value)
        try:
            if self._idle_task is not None and self._idle_task is not asyncio.current_task():
                self._idle_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._idle_task
            for viewer in list(self.viewers.values()):
                await viewer.close(reason)
            if self._starting is not None and self._starting is not asyncio.current_task():
                await self._starting  # a thread building the pipeline cannot be interrupted
            if self.pipeline is not None:
                await asyncio.to_thread(self.pipeline.stop)
        except Exception:
            logger.exception("%r: error while closing", self)
        finally:
            self.lifecycle.to(SessionState.CLOSED)
            self.metrics.close(reason.value)
            if self._on_closed is not None:
                self._on_closed(self, reason)

