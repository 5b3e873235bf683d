"""The desktop thin client: a pygame window that shows the stream and forwards input.

``cloudarcade play --url ...`` (without ``--headless``) runs :func:`play_window`.
It reuses :class:`HeadlessClient`'s receive path; only the frame being drawn is
converted (scaled and turned into RGB by swscale in one pass), without the frame
code's strip along its top (:func:`frame_surface`).

Threads: the window lives on the thread that calls :meth:`DesktopWindow.run`
(the main thread under the CLI: SDL wants its window and event pump on one
thread, on macOS the main one) and the client's asyncio loop on a worker
thread (:mod:`cloudarcade.client.client_thread`). One asyncio task polling
pygame would also work, but scaling, blitting and flipping a large window take
milliseconds that would be milliseconds of late RTP handling, NACK timers and
decoder hand-offs on the loop (STYLE 6), and a flip can block on the
compositor. The threads meet in three places only:

- frames: the loop thread swaps in the latest :class:`Latest` (one reference,
  atomic) and posts a pygame event that wakes the window at once;
- inputs: the window hands events to the loop with ``call_soon_threadsafe``, so
  the data channels are only touched on their own loop;
- stats: while the overlay is shown the window reads counters, a deque copy and
  a list slice twice a second (each atomic under the GIL).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import av
import numpy as np
import pygame

from cloudarcade import framecode, protocol
from cloudarcade.client.client_thread import ClientThread, Latest
from cloudarcade.client.headless import ClientOptions
from cloudarcade.client.input_map import (
    PadState,
    PadTracker,
    key_code,
    pad_state,
)
from cloudarcade.client.overlay import (
    STATS_WINDOW,
    OverlayStats,
    StatsSampler,
    draw_overlay,
    format_lines,
    p50_ms,
    render_panel,
)

logger = logging.getLogger(__name__)

DEFAULT_SIZE: Final = (1280, 720)
# pygame 2.6 cannot ask SDL for the refresh rate; 60 Hz is what most screens run.
DEFAULT_REFRESH: Final = 60.0
ESCAPE_HOLD: Final = 1.0  # s; a tap of Escape goes to the game, a hold quits
OVERLAY_INTERVAL: Final = 0.5
MAX_PADS: Final = protocol.MAX_PAD_INDEX + 1


@dataclass(frozen=True)
class Displayed:
    """A flip that showed a new frame; ``photon`` is when the flip returned."""

    frame_id: int | None
    input_seq: int | None
    decode_end: float
    photon: float


# --- the window --------------------------------------------------------------------


def _last(values: deque[float], count: int) -> list[float]:
    """The newest ``count`` values (copied: the loop thread appends meanwhile)."""
    return list(itertools.islice(values, max(len(values) - count, 0), None))


def fit_rect(frame_size: tuple[int, int], window_size: tuple[int, int]) -> pygame.Rect:
    """The largest rectangle of the frame's aspect centred in the window (letterboxed)."""
    fw, fh = frame_size
    ww, wh = window_size
    scale = min(ww / fw, wh / fh)
    w, h = max(2, round(fw * scale)), max(2, round(fh * scale))
    return pygame.Rect((ww - w) // 2, (wh - h) // 2, w, h)


def code_band(width: int) -> int:
    """Rows of the frame code's strip at the top of a frame ``width`` px wide (0: none)."""
    return framecode.band_height(width) if width >= framecode.MIN_WIDTH else 0


def visible_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """What a player sees of a frame: all of it but the frame code's strip."""
    width, height = frame_size
    return width, height - code_band(width)


def frame_surface(frame: av.VideoFrame, size: tuple[int, int]) -> tuple[pygame.Surface, Any]:
    """The visible part of ``frame`` (:func:`visible_size`) scaled to ``size`` as RGB,
    in one swscale pass, and the buffer it shares.

    Players do not see the instrument: the frame is scaled so that its visible part
    fills ``size`` and the strip's rows are cut off the top (the client read the
    code from the decoded frame already).
    """
    full_height = round(size[1] * frame.height / visible_size((frame.width, frame.height))[1])
    scaled = frame.reformat(width=size[0], height=full_height, format="rgb24",
                            interpolation="BILINEAR")
    rgb: Any = np.ascontiguousarray(scaled.to_ndarray()[full_height - size[1]:])
    return pygame.image.frombuffer(rgb, size, "RGB"), rgb


class DesktopWindow:
    """A pygame window playing one stream; :meth:`run` returns the exit code.

    ``displayed`` keeps the last flips that showed a new frame (the window's
    photons) for whoever wants to measure the display path.
    """

    def __init__(
        self, options: ClientOptions, *, size: tuple[int, int] = DEFAULT_SIZE,
        refresh: float = DEFAULT_REFRESH,
    ) -> None:
        self.options = options
        self.error: str | None = None
        self.frames_shown = 0
        self.displayed: deque[Displayed] = deque(maxlen=600)
        self.shown_rect: pygame.Rect | None = None
        self.shown: Latest | None = None
        self._size = size
        # Draw at most this often: a stream faster than the screen would only burn
        # CPU. Below one refresh period so an early-arriving frame is not held back.
        self._min_interval = 0.75 / refresh
        self._frame_event = pygame.event.custom_type()
        self._wake_event = pygame.event.custom_type()
        self._client = ClientThread(options, self._post_new_frame)
        self._calls: queue.SimpleQueue[tuple[Callable[[pygame.Surface], Any], Future[Any]]] = (
            queue.SimpleQueue())
        self._stop_requested = False
        self._seq = 0
        self._held: set[str] = set()
        self._escape_since: float | None = None
        self._probes: deque[tuple[int, float]] = deque(maxlen=64)
        self._input_to_photon: deque[float] = deque(maxlen=STATS_WINDOW)
        self._display_times: deque[float] = deque(maxlen=STATS_WINDOW)
        self._joysticks: dict[int, tuple[int, Any]] = {}  # instance id -> (pad index, joystick)
        self._pads = PadTracker()
        self._overlay = False
        self._panel: pygame.Surface | None = None
        self._sampler = StatsSampler()
        self._next_sample = 0.0
        self._dirty = True
        self._last_flip = 0.0
        self._image: tuple[Latest, pygame.Surface, Any] | None = None

    # Thread-safe surface.
    def stop(self) -> None:
        """Ask the window to close (any thread)."""
        self._stop_requested = True
        self._post(self._wake_event)

    def call_in_window(self, fn: Callable[[pygame.Surface], Any]) -> Future[Any]:
        """Run ``fn(display surface)`` on the window thread after its next loop turn."""
        future: Future[Any] = Future()
        self._calls.put((fn, future))
        self._post(self._wake_event)
        return future

    def _post(self, event_type: int) -> None:
        with contextlib.suppress(pygame.error):  # the display is gone: nobody to wake
            pygame.event.post(pygame.event.Event(event_type))

    def _post_new_frame(self) -> None:
        self._post(self._frame_event)

    # The window thread.
    def run(self) -> int:
        """Open the window and play until closed: 0 when the user quits, 1 on a client error."""
        pygame.display.init()
        pygame.joystick.init()
        if not pygame.font.get_init():
            pygame.font.init()
        try:
            pygame.display.set_mode(self._size, pygame.RESIZABLE)
            pygame.display.set_caption(f"cloudarcade - {self.options.url}")
            pygame.key.set_repeat()  # no auto-repeat; held keys are tracked anyway
            self._font = pygame.font.Font(None, 22)
            self._client.start()
            try:
                return self._loop()
            except KeyboardInterrupt:
                return 0
            finally:
                self._client.stop()
        finally:
            while not self._calls.empty():
                self._calls.get()[1].cancel()
            pygame.joystick.quit()
            # Not pygame.quit(): fonts may be in use elsewhere in the process (a server).
            pygame.display.quit()

    def _loop(self) -> int:
        while True:
            now = time.monotonic()
            deadlines = [now + 0.1]  # also polls for the client thread ending
            if self._escape_since is not None:
                deadlines.append(self._escape_since + ESCAPE_HOLD)
            if self._dirty:
                deadlines.append(self._last_flip + self._min_interval)
            if self._overlay:
                deadlines.append(self._next_sample)
            wait_ms = max(1, round((min(deadlines) - now) * 1000))
            for event in [pygame.event.wait(wait_ms), *pygame.event.get()]:
                if self._handle(event):
                    return 0
            now = time.monotonic()
            if self._stop_requested:
                return 0
            if self._escape_since is not None and now - self._escape_since >= ESCAPE_HOLD:
                logger.info("Escape held: quitting")
                return 0
            if self._client.done.is_set():
                self.error = self._client.error or "the client stopped"
                return 1
            if self._overlay and now >= self._next_sample:
                self._sample(now)
            if self._dirty and now >= self._last_flip + self._min_interval:
                self._draw()
            while not self._calls.empty():
                fn, future = self._calls.get()
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(pygame.display.get_surface()))
                    except Exception as exc:
                        future.set_exception(exc)

    def _handle(self, event: pygame.event.Event) -> bool:
        """Handle one event; True to quit."""
        kind = event.type
        if kind == pygame.QUIT:
            return True
        if kind in (self._frame_event, pygame.VIDEORESIZE, pygame.WINDOWEXPOSED):
            self._dirty = True
        elif kind == pygame.WINDOWFOCUSLOST:
            # Key-ups we will never see: release everything rather than leave keys held.
            for held in sorted(self._held):
                self._key(held, down=False)
        elif kind == pygame.KEYDOWN and event.key == pygame.K_F1:
            self._overlay = not self._overlay
            self._next_sample = 0.0
            self._dirty = True
        elif kind in (pygame.KEYDOWN, pygame.KEYUP):
            name = key_code(event.key, getattr(event, "scancode", None))
            down = kind == pygame.KEYDOWN
            # A down for a held key is an auto-repeat; an up for a key not held is stale.
            if name is not None and (name in self._held) != down:
                self._key(name, down)
        elif kind == pygame.JOYDEVICEADDED:
            self._pad_added(event.device_index)
        elif kind == pygame.JOYDEVICEREMOVED:
            self._pad_removed(event.instance_id)
        elif kind in (pygame.JOYAXISMOTION, pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP,
                      pygame.JOYHATMOTION):
            self._pad_moved(event.instance_id)
        return False

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _key(self, code: str, down: bool) -> None:
        now = time.monotonic()
        seq = self._next_seq()
        if down:
            self._held.add(code)
            self._probes.append((seq, now))
        else:
            self._held.discard(code)
        if code == "Escape":
            self._escape_since = now if down else None
        self._client.send(protocol.KeyEvent(seq=seq, ts=now, code=code, down=down))

    def _send_pad(self, index: int, state: PadState | None) -> None:
        if state is not None:
            self._client.send(protocol.PadEvent(seq=self._next_seq(), ts=time.monotonic(),
                                                index=index, buttons=state.buttons,
                                                axes=state.axes))

    def _pad_added(self, device_index: int) -> None:
        joystick = pygame.joystick.Joystick(device_index)
        used = {index for index, _ in self._joysticks.values()}
        free = [i for i in range(MAX_PADS) if i not in used]
        if not free:
            logger.warning("%s: already %d pads, ignoring it", joystick.get_name(), MAX_PADS)
            return
        self._joysticks[joystick.get_instance_id()] = (free[0], joystick)
        logger.info("pad %d: %s", free[0], joystick.get_name())
        self._pad_moved(joystick.get_instance_id())

    def _pad_removed(self, instance_id: int) -> None:
        entry = self._joysticks.pop(instance_id, None)
        if entry is not None:
            self._send_pad(entry[0], self._pads.forget(entry[0]))

    def _pad_moved(self, instance_id: int) -> None:
        entry = self._joysticks.get(instance_id)
        if entry is None:
            return
        index, js = entry
        state = pad_state(
            [bool(js.get_button(i)) for i in range(js.get_numbuttons())],
            [float(js.get_axis(i)) for i in range(js.get_numaxes())],
            js.get_hat(0) if js.get_numhats() else None,
        )
        self._send_pad(index, self._pads.update(index, state))

    def _sample(self, now: float) -> None:
        self._next_sample = now + OVERLAY_INTERVAL
        self._dirty = True
        client = self._client.client
        if client is None:
            return
        counters = client.counters()
        received, decoded = self._sampler.rates(now, counters)
        latest = client.latest
        stats = OverlayStats(
            fps_received=received, fps_decoded=decoded,
            frame_latency_p50=p50_ms(_last(client.summary.frame_latencies, STATS_WINDOW)),
            decode_p50=p50_ms(list(client.decode_times)),
            display_p50=p50_ms(list(self._display_times)),
            input_to_photon_p50=p50_ms(list(self._input_to_photon)),
            packets=counters.packets, nacks=counters.nacks, plis=counters.plis,
            frames_skipped=counters.frames_skipped,
            resolution=(latest.frame.width, latest.frame.height) if latest else None,
            codec=client.codec,
        )
        self._panel = render_panel(format_lines(stats), self._font)

    def _draw(self) -> None:
        self._dirty = False
        screen = pygame.display.get_surface()
        screen.fill((0, 0, 0))
        client = self._client.client
        latest = client.latest if client is not None else None
        if latest is None:
            text = ("connected, waiting for video" if self._client.connected.is_set()
                    else f"connecting to {self.options.url} ...")
            label = self._font.render(text, True, (200, 200, 200))
            screen.blit(label, label.get_rect(center=screen.get_rect().center))
        else:
            frame_size = (latest.frame.width, latest.frame.height)
            rect = fit_rect(visible_size(frame_size), screen.get_size())
            if self._image is None or self._image[0] is not latest or (
                    self._image[1].get_size() != rect.size):
                # Converting only the frame being drawn, at the size it is drawn.
                self._image = (latest, *frame_surface(latest.frame, rect.size))
            screen.blit(self._image[1], rect)
            self.shown_rect = rect
        if self._overlay and self._panel is not None:
            draw_overlay(screen, self._panel)
        pygame.display.flip()
        photon = self._last_flip = time.monotonic()
        if latest is not None and latest is not self.shown:
            self._photon(latest, photon)

    def _photon(self, latest: Latest, photon: float) -> None:
        self.shown = latest
        self.frames_shown += 1
        code = latest.code
        self.displayed.append(Displayed(code.frame_id if code else None,
                                        code.input_seq if code else None,
                                        latest.decode_end, photon))
        self._display_times.append(photon - latest.decode_end)
        while code is not None and self._probes and self._probes[0][0] <= code.input_seq:
            self._input_to_photon.append(photon - self._probes.popleft()[1])


def play_window(
    options: ClientOptions, *, size: tuple[int, int] = DEFAULT_SIZE,
    refresh: float = DEFAULT_REFRESH,
) -> int:
    """Play in a window until the user quits (0); print why and return 1 on a client error."""
    window = DesktopWindow(options, size=size, refresh=refresh)
    main = threading.current_thread() is threading.main_thread()
    # SIGINT already ends the loop (KeyboardInterrupt, or SDL's quit event).
    previous = signal.signal(signal.SIGTERM, lambda *_: window.stop()) if main else None
    try:
        code = window.run()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    if code != 0:
        print(f"cloudarcade play: {window.error}", file=sys.stderr)
    return code
