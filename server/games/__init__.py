"""Headless demo games and their registry: ``create_game("pong", width=..., height=...)``."""

from __future__ import annotations

from .base import Game
from .pong import Pong
from .probe import Probe
from .swarm import Swarm
from .terrain import Terrain

# Listing order: the probe first, as the measuring tool, then the demos.
_GAMES: dict[str, type[Game]] = {cls.name: cls for cls in (Probe, Pong, Swarm, Terrain)}

__all__ = ["Game", "available_games", "create_game", "game_class"]


def available_games() -> list[str]:
    """Names accepted by :func:`create_game`."""
    return list(_GAMES)


def game_class(name: str) -> type[Game]:
    """The class registered as ``name``; an unknown name lists the known ones."""
    cls = _GAMES.get(name)
    if cls is None:
        raise ValueError(f"unknown game {name!r}; known games: {', '.join(available_games())}")
    return cls


def create_game(name: str, *, width: int, height: int, seed: int = 0) -> Game:
    """A new game by name; an unknown name fails with the list of known ones."""
    return game_class(name)(width, height, seed)
