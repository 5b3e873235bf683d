"""``swarm``: hundreds of coloured sprites over a scrolling texture, plus a player ship.

Made to be hard for the encoder (motion everywhere, fine texture) and cheap to
draw: the background is one pre-rendered, vertically tiling texture drawn with two
blits, the sprites are a handful of pre-rendered surfaces blitted in one
``Surface.blits`` call, and the motion is numpy arithmetic. Steer the ship with
the arrows, WASD, the left stick or the d-pad.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pygame

from .base import Game

DEFAULT_SPRITES: Final = 400
SPRITE_KINDS: Final = 8
SCROLL_SPEED: Final = 0.25  # frame heights per second
SHIP_SPEED: Final = 0.6  # frame heights per second
SHIP_COLOUR: Final = (255, 240, 80)
KEY: Final = (0, 0, 0)


def _texture(width: int, height: int, rng: np.random.Generator) -> pygame.Surface:
    """A vertically tiling texture: smooth colour bands, a grid and fine noise."""
    ys = np.arange(height, dtype=np.float32)[None, :]
    xs = np.arange(width, dtype=np.float32)[:, None]
    # Whole periods over the height so the top and bottom rows meet seamlessly.
    phase = 2 * np.pi * ys / height
    rgb = np.empty((width, height, 3), np.float32)
    rgb[..., 0] = 60 + 40 * np.sin(3 * phase + xs / 97)
    rgb[..., 1] = 50 + 35 * np.sin(5 * phase + xs / 61 + 1.0)
    rgb[..., 2] = 90 + 50 * np.sin(2 * phase - xs / 143 + 2.0)
    grid = ((xs.astype(np.int32) % 64) < 2) | ((ys.astype(np.int32) % 64) < 2)
    rgb += np.where(grid, 50, 0)[..., None]
    rgb += rng.integers(-24, 25, (width, height, 1)).astype(np.float32)
    return pygame.surfarray.make_surface(np.clip(rgb, 0, 255).astype(np.uint8))


def _sprite(size: int, kind: int, colour: tuple[int, int, int]) -> pygame.Surface:
    surface = pygame.Surface((size, size))
    surface.fill(KEY)
    light = tuple(min(255, c + 80) for c in colour)
    r = size // 2
    if kind % 3 == 0:
        pygame.draw.circle(surface, colour, (r, r), r)
        pygame.draw.circle(surface, light, (r - r // 3, r - r // 3), max(2, r // 3))
    elif kind % 3 == 1:
        pygame.draw.polygon(surface, colour, [(r, 0), (size - 1, r), (r, size - 1), (0, r)])
        pygame.draw.line(surface, light, (r, 2), (r, size - 3), 2)
    else:
        pygame.draw.rect(surface, colour, (1, 1, size - 2, size - 2), border_radius=r // 2)
        pygame.draw.rect(surface, light, (r // 2, r // 2, r, r))
    surface.set_colorkey(KEY)
    return surface


def _ship(size: int) -> pygame.Surface:
    surface = pygame.Surface((size, size))
    surface.fill(KEY)
    pygame.draw.polygon(surface, SHIP_COLOUR, [(size // 2, 0), (size - 1, size - 1), (0, size - 1)])
    pygame.draw.polygon(surface, (255, 90, 40), [(size // 2, size // 2), (size * 3 // 4,
                        size - 1), (size // 4, size - 1)])
    surface.set_colorkey(KEY)
    return surface


def _sprite_kinds(unit: int, rng: np.random.Generator) -> list[pygame.Surface]:
    """The ``SPRITE_KINDS`` sprites, sized from ``unit``, in random colours."""
    colours = rng.integers((80, 40, 40), 256, (SPRITE_KINDS, 3)).tolist()
    return [
        _sprite(unit + (k % 4) * unit // 3, k, (colours[k][0], colours[k][1], colours[k][2]))
        for k in range(SPRITE_KINDS)
    ]


def _drift(
    rng: np.random.Generator, count: int, size: np.ndarray, speed: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Random positions in ``size`` and velocities of ``speed`` (low, high) times its height."""
    positions = rng.random((count, 2)) * size
    speeds = rng.uniform(speed[0], speed[1], (count, 1)) * size[1]
    angles = rng.uniform(0, 2 * np.pi, (count, 1))
    return positions, np.hstack([np.cos(angles), np.sin(angles)]) * speeds


class Swarm(Game):
    """Sprites drift and wrap around; the ship moves with the player's controls."""

    name = "swarm"
    max_players = 1

    def __init__(
        self, width: int, height: int, seed: int = 0, sprites: int = DEFAULT_SPRITES
    ) -> None:
        super().__init__(width, height, seed)
        rng = np.random.default_rng(seed)
        self._background = _texture(width, height, rng)
        unit = max(12, height // 36)
        self._kinds = _sprite_kinds(unit, rng)
        self._kind = rng.integers(0, SPRITE_KINDS, sprites)
        self._surfaces = [self._kinds[int(k)] for k in self._kind]
        self._size = np.array([width, height], np.float64)
        self.positions, self.velocities = _drift(rng, sprites, self._size, (0.05, 0.35))
        self._ship = _ship(max(24, height // 15))
        self.ship = np.array([width / 2, (self.top + height) / 2])
        self.scroll = 0.0
        self._formatted: tuple[object, list[pygame.Surface], pygame.Surface,
                               pygame.Surface] | None = None

    def step(self, dt: float) -> None:
        self.positions = np.mod(self.positions + self.velocities * dt, self._size)
        self.scroll = (self.scroll + SCROLL_SPEED * self.height * dt) % self.height
        controls = self.controls[0]
        move = np.array([controls.horizontal(), controls.vertical()])
        half = self._ship.get_width() / 2
        self.ship = np.clip(
            self.ship + move * SHIP_SPEED * self.height * dt,
            (half, self.top + half),
            (self.width - half, self.height - half),
        )

    def _in_format(
        self, surface: pygame.Surface
    ) -> tuple[list[pygame.Surface], pygame.Surface, pygame.Surface]:
        """Sprites and background in the target's pixel format: blits then copy, not convert."""
        key = (surface.get_bitsize(), surface.get_masks())
        if self._formatted is None or self._formatted[0] != key:
            def same(src: pygame.Surface) -> pygame.Surface:
                out = pygame.Surface(src.get_size(), 0, surface)
                out.blit(src, (0, 0))
                colorkey = src.get_colorkey()
                if colorkey is not None:
                    out.set_colorkey(colorkey, pygame.RLEACCEL)
                return out

            kinds = [same(s) for s in self._kinds]
            self._formatted = (key, kinds, same(self._background), same(self._ship))
            self._surfaces = [kinds[int(k)] for k in self._kind]
        return self._formatted[1], self._formatted[2], self._formatted[3]

    def render(self, surface: pygame.Surface) -> None:
        _, background, ship = self._in_format(surface)
        offset = int(self.scroll)
        surface.blit(background, (0, offset - self.height))
        surface.blit(background, (0, offset))
        corners = (self.positions - 8).astype(np.int32).tolist()
        surface.blits(list(zip(self._surfaces, corners, strict=True)), doreturn=False)
        half = ship.get_width() // 2
        surface.blit(ship, (int(self.ship[0]) - half, int(self.ship[1]) - half))
