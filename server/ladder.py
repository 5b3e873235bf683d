"""The resolution/frame-rate ladder: which operating point a bitrate target can carry.

Bitrate alone stops helping below some bits per pixel: a 720p60 picture at
2 Mbit/s is mush, the same bits spent on 720p30 or 540p30 look better. The
:class:`Ladder` turns the session's congestion-control target into a
:class:`Rung` (a resolution and a frame rate) from a list derived from the
configured one (:func:`build_rungs`): 720p60 → 540p60 → 360p60 → 360p30.
The size goes first, the rate last: at one bitrate a frame of a 30 fps rung is
twice the size of a 60 fps one and takes twice as long through a thin link
(on the dip profile, 720p30 added ~25 ms to the median input-to-photon during
the dip; 540p60 added nothing: docs/congestion.md).

A rung carries the target while its bits per pixel per frame
(``target / (width × height × fps)``) stay at or above ``down_bpp``; a
higher rung is taken only when it would get ``up_bpp`` (hysteresis: a steady
target near a threshold never flips back and forth). Down is quick (the
target below the threshold for ``down_hold``), up is slow (above the higher
rung's threshold for ``up_hold``), and a down step never follows a change
within ``min_dwell``. A step down goes straight to the rung that fits; a step
up goes to the highest rung the target has held for ``up_hold``.

Sans-I/O: :meth:`Ladder.update` takes the target and ``now`` and returns the
rung to use. The session acts on a change (:mod:`cloudarcade.server.session`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Bits per pixel per frame. libx264 ultrafast on the terrain game: 720p60 at the
# default 8 Mbit/s is 0.145; below 0.05 (720p60 under 2.8 Mbit/s) blocks show.
DOWN_BPP = 0.05
UP_BPP = 0.07
DOWN_HOLD_S = 0.5
UP_HOLD_S = 3.0
MIN_DWELL_S = 1.0
# The controller starts at a quarter of the configured bitrate and finds the
# link within about a second: no step down while it does.
START_GRACE_S = 2.0
# Resolution steps, as fractions of the configured height; then the frame-rate
# step halves a rate of 40 fps or more (60 → 30) by encoding every other tick.
SCALES = (1.0, 0.75, 0.5)
MIN_HALVED_FPS = 40
# Frames averaging under this fraction of their share of the target: the game,
# not the link, sets the bitrate (the static probe game: 0.2 of 250 kbit/s).
APP_LIMITED = 0.5
# The frame code (cloudarcade.framecode) needs 320 px of width.
MIN_WIDTH = 320


@dataclass(frozen=True)
class Rung:
    """An operating point: the encoded size, and the frame rate as every ``every``-th tick."""

    width: int
    height: int
    fps: int
    every: int = 1

    @property
    def pixel_rate(self) -> int:
        """Pixels per second."""
        return self.width * self.height * self.fps

    def bpp(self, bitrate: float) -> float:
        """Bits per pixel per frame at ``bitrate`` bits/s."""
        return bitrate / self.pixel_rate

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.fps}"


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def build_rungs(width: int, height: int, fps: int) -> list[Rung]:
    """The ladder for a configured size and rate, best first.

    The full size, 3/4 and 1/2 of it (each at least ``MIN_WIDTH`` wide) at the
    full rate; then, when the rate is ``MIN_HALVED_FPS`` or more, the smallest
    size at half the rate.
    """
    if width < 2 or height < 2 or fps < 1:
        raise ValueError(f"rungs for {width}x{height}@{fps}: expected a positive size and rate")
    rungs = [Rung(width, height, fps)]
    for scale in SCALES[1:]:
        w, h = _even(width * scale), _even(height * scale)
        if w >= MIN_WIDTH:
            rungs.append(Rung(w, h, fps))
    if fps >= MIN_HALVED_FPS:
        last = rungs[-1]
        rungs.append(Rung(last.width, last.height, fps // 2, 2))
    return rungs


class Ladder:
    """Chooses a rung for a bitrate target; hysteresis and hold times keep it steady."""

    def __init__(
        self,
        rungs: Sequence[Rung],
        *,
        down_bpp: float = DOWN_BPP,
        up_bpp: float = UP_BPP,
        down_hold: float = DOWN_HOLD_S,
        up_hold: float = UP_HOLD_S,
        min_dwell: float = MIN_DWELL_S,
        start_grace: float = START_GRACE_S,
    ) -> None:
        if not rungs:
            raise ValueError("a ladder needs at least one rung")
        if not 0 < down_bpp < up_bpp:
            raise ValueError(
                f"thresholds down_bpp={down_bpp}, up_bpp={up_bpp}: expected 0 < down_bpp < up_bpp"
            )
        self.rungs = list(rungs)
        self.down_bpp = down_bpp
        self.up_bpp = up_bpp
        self.down_hold = down_hold
        self.up_hold = up_hold
        self.min_dwell = min_dwell
        self.start_grace = start_grace
        self.index = 0
        self._started: float | None = None
        self._changed = -1e18
        self._below_since: float | None = None
        # Since when the target has carried each higher rung (by index) without a break.
        self._up_since: dict[int, float] = {}

    @property
    def rung(self) -> Rung:
        return self.rungs[self.index]

    def _fitting(self, target: float, bpp: float) -> int:
        """The best rung that gets at least ``bpp`` at ``target`` (the lowest if none does)."""
        for i, rung in enumerate(self.rungs):
            if rung.bpp(target) >= bpp:
                return i
        return len(self.rungs) - 1

    def update(self, target: float, now: float, *, app_limited: bool = False) -> Rung:
        """The rung for the target ``target`` bits/s at ``now`` (seconds, monotonic).

        ``app_limited``: the encoder uses far less than the target (a light game):
        the target then says nothing of the link (a controller cannot climb past
        what it is sent), and a step down would only cost picture.
        """
        if self._started is None:
            self._started = now
        current = self.rung
        if (
            not app_limited
            and current.bpp(target) < self.down_bpp
            and self.index < len(self.rungs) - 1
        ):
            if self._below_since is None:
                self._below_since = now
            if (
                now - self._below_since >= self.down_hold
                and now - self._started >= self.start_grace
                and now - self._changed >= self.min_dwell
            ):
                self._move(self._fitting(target, self.down_bpp), now)
            return self.rung
        self._below_since = None
        # Up: every higher rung the target carries at up_bpp starts (or keeps) its clock.
        for i in range(self.index):
            if self.rungs[i].bpp(target) >= self.up_bpp:
                self._up_since.setdefault(i, now)
            else:
                self._up_since.pop(i, None)
        ready = [i for i, since in self._up_since.items() if now - since >= self.up_hold]
        if ready:
            self._move(min(ready), now)
        return self.rung

    def _move(self, index: int, now: float) -> None:
        if index != self.index:
            self.index = index
            self._changed = now
        self._below_since = None
        self._up_since.clear()


class FrameGate:
    """Which game ticks a rung that encodes every ``every``-th tick renders.

    A credit of one frame accrues over ``every`` ticks. A tick is rendered when
    a whole frame's credit is there, or, when the tick applied an input, half
    of one: the frame that answers a key press goes out at once instead of
    waiting up to a frame interval, and the rate still averages ``every``
    ticks a frame however often inputs come.
    """

    def __init__(self) -> None:
        self._credit = 1.0

    def due(self, every: int, applied: bool) -> bool:
        """Whether to render this tick (``applied``: the tick applied new input)."""
        if every <= 1:
            self._credit = 0.0  # this frame spent the credit; no debt carried over
            return True
        self._credit = min(1.0, self._credit + 1 / every)
        if self._credit >= 1.0 or (applied and self._credit >= 0.5):
            self._credit -= 1.0
            return True
        return False
