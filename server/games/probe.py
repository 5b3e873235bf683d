"""``probe``: the latency probe. Every press flips a big black/white square.

The square flips in the very tick that applies the press, so the first frame
showing the new colour is the photon of that input. A receiver decides the colour
from the mean luma of the square's centre (:func:`marker_state`), which survives
any encoder; the seq number drawn below is for people watching.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np
import numpy.typing as npt
import pygame

from cloudarcade.protocol import InputEvent

from .base import Game, font

logger = logging.getLogger(__name__)

BACKGROUND: Final = (128, 128, 128)
BLACK: Final = (0, 0, 0)
WHITE: Final = (255, 255, 255)
TEXT: Final = (20, 20, 60)
# Mean luma thresholds; between them the reading is ambiguous (a frame mid-flip in
# a broken decode, or no probe at all).
DARK_BELOW: Final = 64
LIGHT_ABOVE: Final = 192


def _align(value: float) -> int:
    return int(value) // 16 * 16


def marker_rect(width: int, height: int) -> pygame.Rect:
    """The marker square: about a quarter of the height, on the 16-px grid, centred."""
    side = max(32, round(height / 4 / 16) * 16)
    return pygame.Rect(_align((width - side) / 2), _align((height - side) / 2), side, side)


def marker_state(y_plane: npt.NDArray[np.uint8], width: int, height: int) -> bool | None:
    """The marker read from a luma plane: True white, False black, None ambiguous.

    Uses the mean of the central half of the square, away from edges blurred by
    the encoder. ``y_plane`` may be wider than ``width`` (a padded line size).
    """
    rect = marker_rect(width, height)
    inner = rect.inflate(-rect.width // 2, -rect.height // 2)
    mean = float(y_plane[inner.top : inner.bottom, inner.left : inner.right].mean())
    if mean > LIGHT_ABOVE:
        return True
    if mean < DARK_BELOW:
        return False
    return None


class Probe(Game):
    """Flips the marker on every key down, pointer button press or pad button press."""

    name = "probe"
    max_players = 2

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        super().__init__(width, height, seed)
        self.marker = marker_rect(width, height)
        if self.marker.top < self.top:
            raise ValueError(f"probe: {width}x{height} leaves no room below the frame code")
        self.white = False
        self._label_seq = -1
        self._label: pygame.Surface | None = None
        self._size = max(24, height // 8)

    def on_input(self, event: InputEvent, player: int, pressed: bool) -> None:
        if pressed:
            self.white = not self.white
            logger.debug("probe: seq %d flips the marker to %s", event.seq,
                         "white" if self.white else "black")

    def step(self, dt: float) -> None:
        """Nothing moves: the probe changes only on input."""

    def render(self, surface: pygame.Surface) -> None:
        surface.fill(BACKGROUND)
        surface.fill(WHITE if self.white else BLACK, self.marker)
        # Text is rendered once per new seq, not per frame.
        if self._label is None or self._label_seq != self.last_input_seq:
            self._label_seq = self.last_input_seq
            self._label = font(self._size).render(f"seq {self._label_seq}", True, TEXT)
        label_rect = self._label.get_rect(
            midtop=(self.marker.centerx, self.marker.bottom + self._size // 2)
        )
        surface.blit(self._label, label_rect)
