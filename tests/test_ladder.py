"""The resolution/frame-rate ladder under a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudarcade.server.ladder import FrameGate, Ladder, Rung, build_rungs

M = 1_000_000
TICK = 0.025  # the feedback interval: the session updates the ladder this often


def drive(ladder: Ladder, target: Callable[[float], float], until: float,
          start: float = 0.0) -> list[tuple[float, Rung]]:
    """Feed ``target(t)`` every TICK from ``start``; the (time, rung) after every update."""
    out = []
    steps = round((until - start) / TICK)
    for k in range(steps + 1):
        t = start + k * TICK
        out.append((t, ladder.update(target(t), t)))
    return out


def changes(trace: list[tuple[float, Rung]]) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    last = None
    for t, rung in trace:
        if rung != last:
            seen.append((round(t, 3), str(rung)))
            last = rung
    return seen


def test_rungs_for_720p60() -> None:
    assert [str(r) for r in build_rungs(1280, 720, 60)] == [
        "1280x720@60", "960x540@60", "640x360@60", "640x360@30",
    ]
    assert [r.every for r in build_rungs(1280, 720, 60)] == [1, 1, 1, 2]


def test_rungs_keep_the_rate_below_40_fps_and_the_frame_code_width() -> None:
    assert [str(r) for r in build_rungs(1280, 720, 30)] == [
        "1280x720@30", "960x540@30", "640x360@30",
    ]
    # Half of 480 px is narrower than the frame code needs.
    assert [str(r) for r in build_rungs(480, 270, 60)] == [
        "480x270@60", "360x202@60", "360x202@30",
    ]
    with pytest.raises(ValueError, match="expected a positive size"):
        build_rungs(0, 720, 60)


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="down_bpp < up_bpp"):
        Ladder(build_rungs(1280, 720, 60), down_bpp=0.07, up_bpp=0.05)


def test_steps_down_when_the_target_stays_low_and_back_up_when_it_recovers() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    # 8M, then 2.5M (0.045 bpp at 720p60: too few) from 5 s to 11 s, then 8M.
    trace = drive(ladder, lambda t: 2.5 * M if 5 <= t < 11 else 8 * M, 20.0)
    steps = changes(trace)
    assert [s for _, s in steps] == ["1280x720@60", "960x540@60", "1280x720@60"]
    down, up = steps[1][0], steps[2][0]
    assert 5.5 <= down < 5.6  # quick: the down hold
    assert 14.0 <= up < 14.1  # slow: the up hold


def test_a_deep_drop_goes_straight_to_the_rung_that_fits() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    trace = drive(ladder, lambda t: 0.6 * M if t >= 3 else 8 * M, 6.0)
    assert [s for _, s in changes(trace)] == ["1280x720@60", "640x360@30"]


def test_step_up_goes_to_the_highest_rung_held_long_enough() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    drive(ladder, lambda t: 0.6 * M, 4.0)
    assert str(ladder.rung) == "640x360@30"
    # 2.5M carries 540p60 at 0.08 bpp but 720p60 only at 0.045: up to 540p60.
    trace = drive(ladder, lambda t: 2.5 * M, 10.0, start=4.0)
    assert changes(trace)[1:] == [(7.0, "960x540@60")]


def test_no_oscillation_on_a_steady_target_near_a_threshold() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    threshold = build_rungs(1280, 720, 60)[0].pixel_rate * ladder.down_bpp
    # Noise of ±3 % around the step-down threshold of 720p60, for a minute.
    trace = drive(ladder, lambda t: threshold * (1 + 0.03 * ((int(t / TICK) % 7) - 3) / 3),
                  60.0)
    assert len(changes(trace)) <= 2  # at most the one step down, never back up


def test_a_short_dip_is_ignored() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    trace = drive(ladder, lambda t: 1 * M if 5 <= t < 5.3 else 8 * M, 10.0)
    assert len(changes(trace)) == 1


def test_no_step_down_while_the_controller_starts() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    # The controller starts at a quarter of 8M and finds the link after a second.
    trace = drive(ladder, lambda t: 2 * M if t < 1.0 else 8 * M, 5.0)
    assert len(changes(trace)) == 1
    # On a link that stays thin it steps down once the grace is over.
    ladder = Ladder(build_rungs(1280, 720, 60))
    trace = drive(ladder, lambda t: 2 * M, 5.0)
    assert changes(trace)[1:] == [(2.0, "960x540@60")]


def test_no_second_step_down_within_the_dwell() -> None:
    ladder = Ladder(build_rungs(1280, 720, 60))
    # 2.5M then, 0.3 s after the step, 1M (too few for 540p60 too, enough for 360p60).
    trace = drive(ladder, lambda t: 1 * M if t >= 3.3 else (2.5 * M if t >= 2.5 else 8 * M),
                  6.0)
    steps = changes(trace)
    assert [s for _, s in steps] == ["1280x720@60", "960x540@60", "640x360@60"]
    assert steps[2][0] - steps[1][0] >= ladder.min_dwell


def test_frame_gate_halves_the_rate_and_lets_an_input_through_at_once() -> None:
    gate = FrameGate()
    assert [gate.due(1, False) for _ in range(4)] == [True] * 4
    assert [gate.due(2, False) for _ in range(6)] == [False, True] * 3
    # An input on the tick after a rendered one is rendered at once ...
    assert gate.due(2, True)
    # ... and the phase moves with it; an input on every tick still gets one in two.
    assert [gate.due(2, True) for _ in range(8)] == [False, True] * 4
    # Without input, one in two again (the last early frame borrowed half a frame).
    assert [gate.due(2, False) for _ in range(7)] == [False, False, True, False, True, False, True]
    # Back at the full rate every tick renders, whatever was borrowed.
    assert gate.due(2, True) and gate.due(1, False) and gate.due(1, False)


def test_no_step_down_on_a_target_the_game_does_not_use() -> None:
    # A light game on a 640x360@30 stream: the controller sits at 250 kbit/s
    # (0.036 bpp, under the step-down threshold) because the game sends 50 kbit/s.
    rungs = build_rungs(640, 360, 30)
    ladder = Ladder(rungs)
    for k in range(400):
        ladder.update(250_000, k * TICK, app_limited=True)
    assert ladder.rung == rungs[0]
    # The same target with frames that fill it: the link is thin, step down.
    for k in range(400, 800):
        ladder.update(250_000, k * TICK)
    assert ladder.rung != rungs[0]
