"""The per-session frame pipeline: a fixed-tick render thread feeding a frame sink.

render thread   drain inputs → game.tick(now) → render → frame code → convert to yuv420p
                (scaled to the ladder's rung) → ``sink.put`` (the media stack's
                :class:`~cloudarcade.server.sinks.FrameSink`:
                the tuned stack's is a one-slot mailbox in front of an encoder thread)

The game ticks at its rate whatever the ladder's rung
(:mod:`cloudarcade.server.ladder`); a rung at a lower rate renders only the
ticks its :class:`~cloudarcade.server.ladder.FrameGate` lets through, and a
rung at a lower size is scaled in the same swscale pass as the colour
conversion, its frame code drawn again at its own width.

The threads do CPU-heavy work that releases the GIL inside SDL, swscale and
libavcodec, so the event loop keeps moving packets meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import av
import numpy as np
import pygame
from av.video.reformatter import VideoReformatter

from cloudarcade import framecode
from cloudarcade.encoder import VIDEO_CLOCK_RATE, EncodedFrame
from cloudarcade.protocol import FrameTiming, InputEvent
from cloudarcade.server.games import Game
from cloudarcade.server.ladder import FrameGate, Rung

if TYPE_CHECKING:
    from cloudarcade.server.sinks import FrameSink

logger = logging.getLogger(__name__)

# Wake this long before a tick deadline and spin the rest: time.sleep alone
# overshoots by up to a millisecond under load.
_SPIN_S = 0.0005


@dataclass
class RenderedFrame:
    """A rendered picture, its timing, and (once a sink encoded it) the encoded frame."""

    frame: av.VideoFrame
    timing: FrameTiming
    encoded: EncodedFrame | None = None
    # On the 90 kHz RTP clock, from the game tick: real time between frames
    # whatever the ladder or congestion control left out.
    pts: int | None = None

    def copy(self) -> RenderedFrame:
        """The same picture with its own timing record (each viewer stamps its sends)."""
        return replace(self, timing=self.timing.copy())


class Mailbox:
    """One slot between two threads; a new item replaces an unread one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: RenderedFrame | None = None
        self._closed = False

    def put(self, item: RenderedFrame) -> RenderedFrame | None:
        """Store ``item``; return the unread item it replaced, if any."""
        with self._cond:
            replaced, self._item = self._item, item
            self._cond.notify()
            return replaced

    def get(self) -> RenderedFrame | None:
        """Wait for an item; None once closed."""
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class SurfaceConverter:
    """pygame surface → yuv420p ``av.VideoFrame`` with no per-pixel Python.

    The surface's 32-bit buffer is BGRX in memory on little-endian machines;
    it is copied once into a bgra frame and swscale converts it.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._reformatter = VideoReformatter()

    def convert(
        self, surface: pygame.Surface, size: tuple[int, int] | None = None
    ) -> av.VideoFrame:
        """The surface as yuv420p, scaled to ``size`` (default: its own) in the same pass."""
        frame = av.VideoFrame(self.width, self.height, "bgra")
        plane = frame.planes[0]
        # A view of the surface's pixels, not ``BufferProxy.raw``: that makes a
        # bytes copy of the whole frame first (2.4 ms vs 0.3 ms at 720p).
        # (The stubs of pygame's BufferProxy and PyAV's update() miss the buffer protocol.)
        pixels = memoryview(surface.get_buffer())  # type: ignore[arg-type]
        if plane.line_size == surface.get_pitch():
            plane.update(pixels)  # type: ignore[arg-type]
        else:
            src = np.frombuffer(pixels, np.uint8).reshape(self.height, surface.get_pitch())
            dst = np.frombuffer(memoryview(plane), np.uint8).reshape(self.height, plane.line_size)
            dst[:, : self.width * 4] = src[:, : self.width * 4]
        if size is None or size == (self.width, self.height):
            return self._reformatter.reformat(frame, format="yuv420p")
        return self._reformatter.reformat(frame, width=size[0], height=size[1], format="yuv420p",
                                          interpolation="BILINEAR")


class LumaSampler:
    """Saves every ``every``-th frame's luma plane as ``frame-<id>.npy`` in ``directory``.

    The bench compares them with the client's decoded frames (PSNR/SSIM).
    """

    def __init__(self, directory: Path, every: int) -> None:
        if every < 1:
            raise ValueError(f"sample every {every} frames: expected >= 1")
        self.directory = directory
        self.every = every
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, frame_id: int, frame: av.VideoFrame) -> None:
        if frame_id % self.every == 0:
            luma = framecode.luma_view(frame)[:, : frame.width]
            np.save(self.directory / f"frame-{frame_id}.npy", luma)


PipelineStats = dict[str, int]


class Pipeline:
    """Runs one session's game at a fixed tick and hands what it renders to ``sink``.

    ``on_rendered`` is called on the render thread with each rendered frame's
    timing; ``on_applied`` with the delay from an input's arrival to the tick
    that applied it (rendered or not).
    """

    def __init__(
        self,
        game: Game,
        width: int,
        height: int,
        fps: int,
        *,
        sink: FrameSink,
        on_drop: Callable[[str], None] | None = None,
        on_rendered: Callable[[FrameTiming], None] | None = None,
        on_applied: Callable[[float], None] | None = None,
        sampler: Callable[[int, av.VideoFrame], None] | None = None,
    ) -> None:
        self.game = game
        self.fps = fps
        self.sink = sink
        self._on_drop = on_drop or (lambda phase: None)
        self._on_rendered = on_rendered or (lambda timing: None)
        self._on_applied = on_applied or (lambda delay: None)
        self._sampler = sampler
        self._inputs: deque[tuple[InputEvent, int, float]] = deque(maxlen=1024)
        # When the last input the game applied reached the server. Every frame
        # carries it, not only the frame of the tick that applied it: that frame
        # may never be shown (the mailbox keeps the latest, congestion control
        # skips, stock aiortc takes one frame in two), and the frame that first
        # shows the input must still say when it arrived.
        self._applied_recv: float | None = None
        self._stop = threading.Event()
        self._surface = pygame.Surface((width, height), 0, 32)
        self._converter = SurfaceConverter(width, height)
        self._threads: list[threading.Thread] = []
        self._stats: PipelineStats = {"rendered": 0, "skipped_ticks": 0}
        # Written by the event loop (set_rung), read once a tick by the render thread.
        self._rung = Rung(width, height, fps)
        self._gate = FrameGate()
        self._frame_id = 0

    @property
    def stats(self) -> PipelineStats:
        return {**self._stats, **self.sink.stats}

    # Called from the event loop.
    def push_input(self, event: InputEvent, player: int, received: float) -> None:
        """Queue an input for the next tick (thread-safe: deque.append is atomic)."""
        self._inputs.append((event, player, received))

    def request_keyframe(self) -> None:
        self.sink.request_keyframe()

    def set_rung(self, rung: Rung) -> None:
        """Render at ``rung`` from the next tick on (any thread)."""
        self._rung = rung

    @property
    def rung(self) -> Rung:
        return self._rung

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        self.sink.start()
        self._threads = [threading.Thread(target=self._render_loop, name="render", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the render thread and the sink and wait for them; safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
            if thread.is_alive():
                logger.error("pipeline thread %s did not stop", thread.name)
        self._threads = []
        self.sink.stop()

    def _render_loop(self) -> None:
        period = 1.0 / self.fps
        deadline = time.monotonic()
        tick = 0
        try:
            while not self._stop.is_set():
                delay = deadline - time.monotonic()
                if delay > _SPIN_S and self._stop.wait(delay - _SPIN_S):
                    break
                while time.monotonic() < deadline:
                    pass
                self._tick(tick)
                tick += 1
                deadline += period
                late = time.monotonic() - deadline
                if late > period:
                    # Behind by more than a tick: skip the missed ticks rather
                    # than rendering a burst of stale frames.
                    skipped = int(late / period)
                    self._stats["skipped_ticks"] += skipped
                    for _ in range(skipped):
                        self._on_drop("render_skip")
                    deadline += skipped * period
                    tick += skipped
        except Exception:
            logger.exception("render loop failed")

    def _tick(self, tick: int) -> None:
        """One game tick; rendered and handed on if the rung's gate lets it through.

        Frame ids count rendered frames (the ticks a lower rate leaves out are
        not frames that went missing); ``pts`` counts ticks.
        """
        tick_start = time.monotonic()
        applied = False
        while self._inputs:
            event, player, received = self._inputs.popleft()
            self.game.apply_input(event, player)
            self._applied_recv = received
            applied = True
        if applied and self._applied_recv is not None:
            self._on_applied(tick_start - self._applied_recv)
        self.game.tick(tick_start)
        rung = self._rung
        # A tick that applied an input is rendered early when it can be (see
        # FrameGate): the frame that answers a key press is not held back.
        if not self._gate.due(rung.every, applied):
            return
        self._render(self._frame_id, tick, tick_start, rung)
        self._frame_id += 1

    def _render(self, frame_id: int, tick: int, tick_start: float, rung: Rung) -> None:
        timing = FrameTiming(frame_id=frame_id, width=rung.width, height=rung.height,
                             fps=rung.fps)
        timing.tick_start = tick_start
        timing.sim_end = time.monotonic()
        self.game.render(self._surface)
        timing.input_seq = self.game.last_input_seq
        timing.input_recv = self._applied_recv
        full = self._surface.get_size() == (rung.width, rung.height)
        if full:
            framecode.write(self._surface, frame_id, timing.input_seq)
        timing.render_end = time.monotonic()
        frame = self._converter.convert(self._surface, (rung.width, rung.height))
        if not full:
            framecode.write_frame(frame, frame_id, timing.input_seq)
        timing.convert_end = time.monotonic()
        if self._sampler is not None:
            self._sampler(frame_id, frame)
        self._stats["rendered"] += 1
        self._on_rendered(timing)
        self.sink.put(RenderedFrame(frame, timing, pts=tick * VIDEO_CLOCK_RATE // self.fps))
