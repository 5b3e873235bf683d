"""A game's play rendered ahead of time, for the encoder benchmarks.

``encoder_bitrate`` and ``ladder_rungs`` encode the same frames several ways;
both render them here first, with the same arguments.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame

from cloudarcade.server.games import create_game


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--codec``, ``--game``, ``--resolution`` and ``--fps``, as both benchmarks take them."""
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--game", default="terrain")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", type=int, default=60)


def render(game_name: str, width: int, height: int, fps: int, count: int) -> list[pygame.Surface]:
    """``count`` ticks of ``game_name`` at ``fps``, each rendered to its own surface."""
    game = create_game(game_name, width=width, height=height)
    surfaces = []
    for tick in range(count):
        game.tick(tick / fps)
        surface = pygame.Surface((width, height), 0, 32)
        game.render(surface)
        surfaces.append(surface)
    return surfaces
