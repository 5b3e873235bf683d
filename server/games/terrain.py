"""``terrain``: a realistic encoder load — a full-screen world scrolling in two
directions, shimmering detail that changes every frame, sprites and a ship.

Made for the benchmark: a real game's frame changes everywhere (camera
motion, particles, foliage, film grain), so it needs at least the configured
bitrate at 720p60, where ``probe`` needs almost none. Cheap to draw: one
pre-rendered tiling texture (four blits), one of a few pre-rendered grain
layers added at a moving offset (one additive blit), sprites in one
``Surface.blits`` call. Deterministic: the grain layer and offset follow the
frame count. Steer with the arrows, WASD, the left stick or the d-pad.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pygame

from .base import Game
from .swarm import SPRITE_KINDS, _drift, _ship, _sprite_kinds

SPRITES: Final = 150
GRAIN_LAYERS: Final = 4
GRAIN_AMPLITUDE: Final = 14
SHIP_SPEED: Final = 0.6  # frame heights per second
# Camera speed in frame heights per second: forward, with a slow weave.
CAMERA_FORWARD: Final = 0.35
CAMERA_WEAVE: Final = 0.25


def _world(width: int, height: int, rng: np.random.Generator) -> pygame.Surface:
    """A texture tiling in both directions: fields of colour, roads and fine detail."""
    xs = np.arange(width, dtype=np.float32)[:, None] * (2 * np.pi / width)
    ys = np.arange(height, dtype=np.float32)[None, :] * (2 * np.pi / height)
    rgb = np.empty((width, height, 3), np.float32)
    rgb[..., 0] = 70 + 45 * np.sin(3 * xs + 2 * ys) + 20 * np.sin(11 * xs - 7 * ys)
    rgb[..., 1] = 90 + 50 * np.sin(2 * xs - 5 * ys + 1.0) + 20 * np.cos(13 * ys + 5 * xs)
    rgb[..., 2] = 60 + 40 * np.sin(7 * xs + 3 * ys + 2.0)
    px = np.arange(width)[:, None]
    py = np.arange(height)[None, :]
    roads = ((px % 160) < 6) | ((py % 120) < 6)
    rgb = np.where(roads[..., None], np.float32(170), rgb)
    rgb += rng.integers(-30, 31, (width, height, 3)).astype(np.float32)
    return pygame.surfarray.make_surface(np.clip(rgb, 0, 255).astype(np.uint8))


def _grain(width: int, height: int, rng: np.random.Generator) -> pygame.Surface:
    noise = rng.integers(0, GRAIN_AMPLITUDE + 1, (width, height, 1), dtype=np.uint8)
    return pygame.surfarray.make_surface(np.repeat(noise, 3, axis=2))


class Terrain(Game):
    """The camera glides over the world; the ship moves with the player's controls."""

    name = "terrain"
    max_players = 1

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        super().__init__(width, height, seed)
        rng = np.random.default_rng(seed)
        self._world = _world(width, height, rng)
        self._grains = [_grain(width, height, rng) for _ in range(GRAIN_LAYERS)]
        unit = max(12, height // 30)
        kinds = _sprite_kinds(unit, rng)
        self._sprites = [kinds[int(k)] for k in rng.integers(0, SPRITE_KINDS, SPRITES)]
        self._size = np.array([width, height], np.float64)
        self.positions, self.velocities = _drift(rng, SPRITES, self._size, (0.1, 0.5))
        self._ship = _ship(max(24, height // 15))
        self.ship = np.array([width / 2, (self.top + height) / 2])
        self.camera = np.zeros(2)
        self.time = 0.0
        self.frames = 0
        self._formatted: tuple[object, pygame.Surface, list[pygame.Surface]] | None = None

    def step(self, dt: float) -> None:
        self.time += dt
        self.frames += 1
        weave = CAMERA_WEAVE * math.sin(0.7 * self.time)
        self.camera = np.mod(
            self.camera + np.array([weave, CAMERA_FORWARD]) * self.height * dt, self._size
        )
        self.positions = np.mod(self.positions + self.velocities * dt, self._size)
        controls = self.controls[0]
        move = np.array([controls.horizontal(), controls.vertical()])
        half = self._ship.get_width() / 2
        self.ship = np.clip(
            self.ship + move * SHIP_SPEED * self.height * dt,
            (half, self.top + half),
            (self.width - half, self.height - half),
        )

    def _in_format(self, surface: pygame.Surface) -> tuple[pygame.Surface, list[pygame.Surface]]:
        key = (surface.get_bitsize(), surface.get_masks())
        if self._formatted is None or self._formatted[0] != key:
            def same(src: pygame.Surface) -> pygame.Surface:
                out = pygame.Surface(src.get_size(), 0, surface)
                out.blit(src, (0, 0))
                return out

            self._formatted = (key, same(self._world), [same(g) for g in self._grains])
        return self._formatted[1], self._formatted[2]

    def render(self, surface: pygame.Surface) -> None:
        world, grains = self._in_format(surface)
        w, h = self.width, self.height
        cx, cy = int(self.camera[0]), int(self.camera[1])
        for dx in (0, w):
            for dy in (0, h):
                surface.blit(world, (dx - cx, dy - cy))
        # Fresh detail every frame: the encoder cannot predict it from the last one.
        grain = grains[self.frames % GRAIN_LAYERS]
        gx = (self.frames * 37) % w
        gy = (self.frames * 23) % h
        for dx in (0, w):
            for dy in (0, h):
                surface.blit(grain, (dx - gx, dy - gy), special_flags=pygame.BLEND_RGB_ADD)
        corners = (self.positions - 8).astype(np.int32).tolist()
        surface.blits(list(zip(self._sprites, corners, strict=True)), doreturn=False)
        half = self._ship.get_width() // 2
        surface.blit(self._ship, (int(self.ship[0]) - half, int(self.ship[1]) - half))
