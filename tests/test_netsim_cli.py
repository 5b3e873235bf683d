"""``cloudarcade profiles`` and ``cloudarcade netsim`` from the user's side."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cloudarcade.cli import build_parser
from cloudarcade.commands import netsim as netsim_cmd
from cloudarcade.commands import profiles as profiles_cmd

from .test_netsim_profile import REQUIRED


def _run(module: object, argv: list[str]) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    rc: int = module.run(args)  # type: ignore[attr-defined]
    return rc


def test_profiles_lists_every_profile_with_numbers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert _run(profiles_cmd, ["profiles"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
    assert "7 / 18" in out  # 5g-nsa delay, down / up


def test_profiles_bad_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\ndescription="d"\nsource="s"\ndelay_ms="abc"\n')
    assert _run(profiles_cmd, ["profiles", "--file", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "link.delay_ms: expected a number >= 0" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--profile", "6g", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9"],
            "unknown profile '6g'; known: ideal",
        ),
        (
            ["--profile", "ideal", "--listen", "localhost", "--forward", "127.0.0.1:9"],
            "bad address 'localhost': expected HOST:PORT",
        ),
        (
            ["--profile", "ideal", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:99999"],
            "bad address '127.0.0.1:99999'",
        ),
        (
            ["--profile", "ideal", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9",
             "--idle-timeout", "0"],
            "--idle-timeout must be > 0 s, got 0",
        ),
    ],
)
def test_netsim_bad_input_is_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(netsim_cmd, ["netsim", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_netsim_standalone_relays_until_ctrl_c(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    host, port = server.getsockname()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudarcade.cli",
            "netsim",
            "--profile",
            "5g-sa",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            f"{host}:{port}",
            "--seed",
            "4",
            "--interval",
            "0.2",
            "--event-log",
            str(tmp_path / "ev.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line and not line.startswith("netsim:"):  # other packages' banners
            line = proc.stdout.readline()
        m = re.match(r"netsim: 127\.0\.0\.1:(\d+) -> .*profile 5g-sa \(seed 4\)", line)
        assert m, line
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.sendto(b"hello", ("127.0.0.1", int(m.group(1))))
        assert server.recvfrom(100)[0] == b"hello"
        stats_line = proc.stdout.readline()
        assert stats_line.startswith("uplink")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert (tmp_path / "ev.uplink.log").read_text().count(" + 5") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()


def test_netsim_netem_backend_prints_commands_or_says_why_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cloudarcade.netsim.netem import netem_status

    argv = ["netsim", "--profile", "5g-sa", "--listen", "127.0.0.1:0", "--forward",
            "127.0.0.1:9", "--backend", "netem"]
    rc = _run(netsim_cmd, argv)
    out, err = capsys.readouterr()
    status = netem_status()
    if status.available:
        assert rc == 0 and out.startswith("tc qdisc replace dev lo root netem delay 4ms")
    else:  # this project's machines: the kernel has no netem
        assert rc == 2 and status.reason in err and "\n" not in err.strip()
