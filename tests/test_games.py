"""Games: registry, determinism, probe marker timing, pong controls, swarm rendering."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import av
import numpy as np
import pygame
import pytest

from cloudarcade import framecode
from cloudarcade.protocol import InputEvent, KeyEvent, PadEvent, PointerEvent
from cloudarcade.server.games import available_games, create_game
from cloudarcade.server.games.base import MAX_DT, Game
from cloudarcade.server.games.pong import Pong
from cloudarcade.server.games.probe import marker_rect, marker_state
from cloudarcade.server.games.swarm import Swarm


def _surface(game: Game) -> pygame.Surface:
    return pygame.Surface((game.width, game.height), 0, 32)


def _frame(game: Game, surface: pygame.Surface | None = None) -> bytes:
    surface = surface or _surface(game)
    game.render(surface)
    return bytes(surface.get_buffer())


def _luma(surface: pygame.Surface) -> np.ndarray:
    width, height = surface.get_size()
    bgra = np.frombuffer(surface.get_buffer(), np.uint8).reshape(height, width, 4)
    frame = av.VideoFrame.from_ndarray(bgra, format="bgra").reformat(format="yuv420p")
    return framecode.luma_view(frame)


def test_registry() -> None:
    assert available_games() == ["probe", "pong", "swarm", "terrain"]
    game = create_game("pong", width=640, height=360, seed=3)
    assert isinstance(game, Pong) and game.seed == 3
    with pytest.raises(ValueError) as info:
        create_game("xyz", width=640, height=360)
    assert str(info.value) == "unknown game 'xyz'; known games: probe, pong, swarm, terrain"


def test_too_small_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="320"):
        create_game("probe", width=200, height=360)


SCRIPT: list[tuple[float, InputEvent | None]] = [
    (0.0, None),
    (0.1, KeyEvent(1, 0.1, "ArrowUp", True)),
    (0.3, PointerEvent(2, 0.3, 0.5, 0.8, 1.0, 2.0, 1)),
    (0.5, KeyEvent(3, 0.5, "ArrowUp", False)),
    (0.7, PadEvent(4, 0.7, 0, (0.0,) * 12 + (1.0,), (0.0, 1.0))),
    (0.9, KeyEvent(5, 0.9, "KeyD", True)),
]


@pytest.mark.parametrize("name", ["probe", "pong", "swarm", "terrain"])
def test_deterministic(name: str) -> None:
    games = [create_game(name, width=640, height=360, seed=42) for _ in range(2)]
    frames: list[list[bytes]] = [[], []]
    for g, game in enumerate(games):
        surface = _surface(game)
        script = iter(SCRIPT)
        pending = next(script, None)
        for i in range(90):
            now = i / 60
            while pending is not None and pending[0] <= now:
                if pending[1] is not None:
                    game.apply_input(pending[1])
                pending = next(script, None)
            game.tick(now)
            frames[g].append(_frame(game, surface))
    assert frames[0] == frames[1]
    assert len(set(frames[0])) > 1 or name == "probe"
    other = create_game(name, width=640, height=360, seed=43)
    other.tick(0.0)
    if name != "probe":
        other.tick(1.0)
        games[0].tick(1.0)
        assert _frame(other) != _frame(games[0])


def test_dt_is_clamped_and_first_tick_is_zero() -> None:
    game = create_game("swarm", width=640, height=360)
    assert isinstance(game, Swarm)
    start = game.positions.copy()
    game.tick(100.0)
    assert np.array_equal(game.positions, start)
    game.tick(200.0)  # a 100 s stall moves things by MAX_DT only
    moved = np.abs(game.positions - start)
    moved = np.minimum(moved, np.array([640, 360]) - moved)  # wrap-around
    assert moved.max() <= np.abs(game.velocities).max() * MAX_DT + 1e-6


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (320, 240)])
def test_probe_marker_flips_in_the_tick_that_applies_the_input(size: tuple[int, int]) -> None:
    width, height = size
    game = create_game("probe", width=width, height=height)
    surface = _surface(game)
    rect = marker_rect(width, height)
    assert rect.x % 16 == 0 and rect.y % 16 == 0 and rect.width % 16 == 0
    assert rect.top >= framecode.band_height(width)
    assert abs(rect.width - height / 4) <= 16

    def marker() -> bool | None:
        game.render(surface)
        return marker_state(_luma(surface), width, height)

    game.tick(0.0)
    assert marker() is False and game.last_input_seq == 0
    presses: list[InputEvent] = [
        KeyEvent(1, 0.0, "Space", True),
        KeyEvent(2, 0.0, "Space", False),  # key-up: no flip, but seq is applied
        PointerEvent(3, 0.0, 0.5, 0.5, 0.0, 0.0, 1),
        PointerEvent(4, 0.0, 0.6, 0.5, 1.0, 0.0, 1),  # held, moving: no flip
        PadEvent(5, 0.0, 0, (1.0,), ()),
        PadEvent(6, 0.0, 0, (1.0,), ()),  # still held: no flip
    ]
    expected = [True, True, False, False, True, True]
    for i, (event, white) in enumerate(zip(presses, expected, strict=True)):
        game.apply_input(event)
        # Latched, not applied: the frame before the tick is unchanged.
        assert game.last_input_seq == event.seq - 1
        game.tick(0.1 * (i + 1))
        assert game.last_input_seq == event.seq
        assert marker() is white, event


def test_probe_marker_state_ambiguous() -> None:
    assert marker_state(np.full((360, 640), 128, np.uint8), 640, 360) is None
    assert marker_state(np.full((360, 704), 235, np.uint8), 640, 360) is True


def _pong() -> Pong:
    game = create_game("pong", width=640, height=360)
    assert isinstance(game, Pong)
    game.tick(0.0)
    return game


@pytest.mark.parametrize(
    ("down", "up"),
    [
        (KeyEvent(1, 0, "KeyS", True), KeyEvent(2, 0, "KeyS", False)),
        (KeyEvent(1, 0, "ArrowDown", True), KeyEvent(2, 0, "ArrowDown", False)),
        (PadEvent(1, 0, 0, (), (0.0, 1.0)), PadEvent(2, 0, 0, (), (0.0, 0.0))),
        (PadEvent(1, 0, 0, (0.0,) * 13 + (1.0,), ()), PadEvent(2, 0, 0, (), ())),
    ],
)
def test_pong_paddle_moves_down_on_input(down: InputEvent, up: InputEvent) -> None:
    game = _pong()
    start = game.paddle_y[0]
    game.apply_input(down)
    game.tick(0.1)
    moved = game.paddle_y[0]
    assert moved > start
    game.apply_input(up)
    game.tick(0.2)
    game.tick(0.3)
    assert game.paddle_y[0] == moved  # released: stays


def test_pong_paddle_moves_up_and_follows_pointer() -> None:
    game = _pong()
    start = game.paddle_y[0]
    game.apply_input(KeyEvent(1, 0, "KeyW", True))
    game.tick(0.05)
    assert game.paddle_y[0] < start
    game.apply_input(KeyEvent(2, 0, "KeyW", False))
    game.apply_input(PointerEvent(3, 0, 0.5, 0.75, 0.0, 0.0, 0))
    game.tick(0.1)
    assert game.paddle_y[0] == pytest.approx(game.top + 0.75 * (360 - game.top))


def test_pong_second_player_takes_the_right_paddle() -> None:
    game = _pong()
    assert not game.right_human
    start = game.paddle_y[1]
    game.apply_input(KeyEvent(1, 0, "ArrowUp", True), player=1)
    game.tick(0.1)
    assert game.right_human and game.paddle_y[1] < start
    assert game.paddle_y[0] == start  # player 0's paddle untouched
    with pytest.raises(ValueError, match="player"):
        game.apply_input(KeyEvent(2, 0, "ArrowUp", True), player=2)


def test_pong_plays_and_scores() -> None:
    game = _pong()
    speeds = set()
    for i in range(1, 60 * 30):
        game.tick(i / 60)
        speeds.add(round(abs(game.ball_vx)))
        assert game.top <= game.ball_y <= game.height
    # An idle left paddle loses points to the AI; hits sped the ball up.
    assert game.scores[1] >= 1
    assert max(speeds) > game.base_speed * 0.9


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
def test_swarm_renders(size: tuple[int, int]) -> None:
    game = create_game("swarm", width=size[0], height=size[1], seed=1)
    assert isinstance(game, Swarm)
    surface = _surface(game)
    game.tick(0.0)
    game.render(surface)
    for i in range(1, 31):
        game.tick(i / 60)
        game.render(surface)
    # Lots of motion: most of the frame changes between two ticks.
    before = np.frombuffer(_frame(game, surface), np.uint32).copy()
    game.tick(1.0)
    after = np.frombuffer(_frame(game, surface), np.uint32)
    assert np.mean(before != after) > 0.5


def test_swarm_ship_steers() -> None:
    game = create_game("swarm", width=640, height=360)
    assert isinstance(game, Swarm)
    game.tick(0.0)
    start = game.ship.copy()
    game.apply_input(KeyEvent(1, 0, "ArrowLeft", True))
    game.apply_input(PadEvent(2, 0, 0, (), (0.0, -1.0)))
    game.tick(0.1)
    assert game.ship[0] < start[0] and game.ship[1] < start[1]
