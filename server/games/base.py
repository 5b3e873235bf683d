"""The game interface: sans-I/O, deterministic, driven by inputs and ``now``.

A game never reads a clock or a socket. The server latches client inputs with
:meth:`Game.apply_input`, advances the simulation with :meth:`Game.tick` and draws
it with :meth:`Game.render`; the same seed, inputs and ``now`` values give the same
frames, byte for byte, which is what the tests and the benchmarks rely on.

The top :func:`cloudarcade.framecode.band_height` rows belong to the frame code,
which the server draws over each rendered frame: games keep important content out
of them (:attr:`Game.top`).
"""

from __future__ import annotations

import abc
import logging
import os
from dataclasses import dataclass, field
from typing import ClassVar, Final

import pygame

from cloudarcade import framecode
from cloudarcade.protocol import InputEvent, KeyEvent, PointerEvent

logger = logging.getLogger(__name__)

MAX_DT: Final = 0.1
# Inputs latched between two ticks. A client cannot send more than its data channel
# carries, but a stalled game loop must not let the backlog grow without bound.
MAX_PENDING: Final = 1024
MIN_HEIGHT: Final = 180

PAD_UP: Final = 12
PAD_DOWN: Final = 13
PAD_LEFT: Final = 14
PAD_RIGHT: Final = 15
PAD_PRESSED: Final = 0.5
AXIS_DEADZONE: Final = 0.2

UP_KEYS: Final = frozenset({"KeyW", "ArrowUp"})
DOWN_KEYS: Final = frozenset({"KeyS", "ArrowDown"})
LEFT_KEYS: Final = frozenset({"KeyA", "ArrowLeft"})
RIGHT_KEYS: Final = frozenset({"KeyD", "ArrowRight"})


@dataclass
class PlayerControls:
    """What one player is holding, folded from their input events."""

    keys: set[str] = field(default_factory=set)
    pointer: tuple[float, float] | None = None
    pointer_buttons: int = 0
    pad_buttons: tuple[float, ...] = ()
    pad_axes: tuple[float, ...] = ()

    def update(self, event: InputEvent) -> bool:
        """Fold ``event`` in; return True if it is a press (key down, button pressed)."""
        if isinstance(event, KeyEvent):
            if event.down:
                self.keys.add(event.code)
            else:
                self.keys.discard(event.code)
            return event.down
        if isinstance(event, PointerEvent):
            pressed = event.buttons & ~self.pointer_buttons
            self.pointer = (event.x, event.y)
            self.pointer_buttons = event.buttons
            return pressed != 0
        previous = self.pad_buttons
        self.pad_buttons = event.buttons
        self.pad_axes = event.axes
        return any(
            value > PAD_PRESSED and (i >= len(previous) or previous[i] <= PAD_PRESSED)
            for i, value in enumerate(event.buttons)
        )

    def _button(self, index: int) -> bool:
        return index < len(self.pad_buttons) and self.pad_buttons[index] > PAD_PRESSED

    def _axis(self, index: int) -> float:
        if index >= len(self.pad_axes) or abs(self.pad_axes[index]) < AXIS_DEADZONE:
            return 0.0
        return self.pad_axes[index]

    def vertical(self) -> float:
        """-1 (up) .. 1 (down) from keys, d-pad and the left stick."""
        value = float(bool(self.keys & DOWN_KEYS)) - float(bool(self.keys & UP_KEYS))
        value += float(self._button(PAD_DOWN)) - float(self._button(PAD_UP))
        value += self._axis(1)
        return max(-1.0, min(1.0, value))

    def horizontal(self) -> float:
        """-1 (left) .. 1 (right) from keys, d-pad and the left stick."""
        value = float(bool(self.keys & RIGHT_KEYS)) - float(bool(self.keys & LEFT_KEYS))
        value += float(self._button(PAD_RIGHT)) - float(self._button(PAD_LEFT))
        value += self._axis(0)
        return max(-1.0, min(1.0, value))


class Game(abc.ABC):
    """A headless game: inputs are latched, take effect in the next tick, render draws all."""

    name: ClassVar[str]
    max_players: ClassVar[int]

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        if height < MIN_HEIGHT:
            raise ValueError(f"{self.name}: frame height must be >= {MIN_HEIGHT}, got {height}")
        self.width = width
        self.height = height
        self.seed = seed
        # First row below the frame-code band (raises for frames narrower than it needs).
        self.top = framecode.band_height(width)
        self.controls = [PlayerControls() for _ in range(self.max_players)]
        self._pending: list[tuple[InputEvent, int]] = []
        self._now: float | None = None
        self._last_input_seq = 0

    @property
    def last_input_seq(self) -> int:
        """``seq`` of the last input applied by a tick (0 before any)."""
        return self._last_input_seq

    def apply_input(self, event: InputEvent, player: int = 0) -> None:
        """Latch ``event`` from ``player``; it takes effect in the next :meth:`tick`."""
        if not 0 <= player < self.max_players:
            raise ValueError(f"{self.name}: player must be 0..{self.max_players - 1}, got {player}")
        if len(self._pending) >= MAX_PENDING:
            logger.warning("%s: %d inputs pending, dropping the oldest", self.name, MAX_PENDING)
            del self._pending[0]
        self._pending.append((event, player))

    def tick(self, now: float) -> None:
        """Apply the latched inputs, then advance the simulation to ``now`` (seconds).

        The step is ``now`` minus the previous tick's ``now``: 0 on the first tick,
        never negative, and at most 0.1 s, so a stalled loop does not make the
        simulation jump.
        """
        dt = 0.0 if self._now is None else min(max(now - self._now, 0.0), MAX_DT)
        self._now = now
        pending, self._pending = self._pending, []
        for event, player in pending:
            pressed = self.controls[player].update(event)
            self.on_input(event, player, pressed)
            self._last_input_seq = event.seq
        self.step(dt)

    def on_input(self, event: InputEvent, player: int, pressed: bool) -> None:  # noqa: B027
        """Hook called in the tick that applies ``event``, after ``controls`` took it in.

        ``pressed`` is True for a key down or a newly pressed pointer/pad button.
        Games that only read :attr:`controls` in :meth:`step` need not override it.
        """

    @abc.abstractmethod
    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds (0 <= dt <= 0.1)."""

    @abc.abstractmethod
    def render(self, surface: pygame.Surface) -> None:
        """Draw the whole frame on ``surface`` (``width`` x ``height``, 32-bit)."""


_fonts: dict[int, pygame.font.Font] = {}


def font(size: int) -> pygame.font.Font:
    """pygame's bundled default font at ``size`` px, loaded once (same glyphs everywhere)."""
    cached = _fonts.get(size)
    if cached is None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        if not pygame.font.get_init():
            pygame.font.init()
        cached = _fonts[size] = pygame.font.Font(None, size)
    return cached
