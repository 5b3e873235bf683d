"""The command line: listings, and bad input as one clear line with exit code 2."""

from __future__ import annotations

import pytest

from cloudarcade import cli


def test_games_lists_every_game(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["games"]) == 0
    out = capsys.readouterr().out
    for name in ("probe", "pong", "swarm"):
        assert name in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--game", "tetris"], "known games: probe, pong, swarm"),
        (["serve", "--resolution", "huge"], "resolution: expected WIDTHxHEIGHT"),
        (["serve", "--profile", "6g"], "unknown profile '6g'"),
        (["bench", "--profiles", "ideal,6g"], "unknown profile '6g'; known profiles: ideal"),
        (["bench", "--codec", "h265"], "unknown codec 'h265'; known codecs: h264"),
        (["bench", "--probes", "0"], "probes: expected at least 1"),
    ],
)
def test_bad_input_is_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
