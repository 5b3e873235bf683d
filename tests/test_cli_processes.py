"""The commands as a user runs them: ``serve`` and ``play`` as real processes.

``serve --profiles FILE --metrics HOST:PORT``, ``play --headless --json``, and
the desktop window (SDL's dummy video driver, as in test_window.py) ending on
SIGTERM and on losing its server. Everything on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from cloudarcade.client.headless import ClientOptions, HeadlessClient

pytestmark = pytest.mark.slow

SMALL = ["--resolution", "320x180", "--fps", "30", "--bitrate", "500k"]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
       "PYTHONUNBUFFERED": "1"}
PROFILES_TOML = """\
["lab-link"]
description = "A profile that only this file defines."
source = "test"
delay_ms = 5
"""


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    url: str
    metrics_url: str
    log: list[str]


async def _cli(*args: str, stdout: int | None = asyncio.subprocess.PIPE
               ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudarcade.cli", *args,
        stdout=stdout, stderr=asyncio.subprocess.PIPE, env=ENV,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """``cloudarcade serve`` with a profiles file and /metrics on its own port."""
    profiles = tmp_path / "lab.toml"
    profiles.write_text(PROFILES_TOML)
    process = await _cli("-v", "serve", "--port", "0", "--no-uvloop", "--game", "probe", *SMALL,
                         "--profiles", str(profiles), "--metrics", "127.0.0.1:0",
                         stdout=asyncio.subprocess.DEVNULL)
    assert process.stderr is not None
    log: list[str] = []
    url = metrics_url = None
    try:
        while url is None or metrics_url is None:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "serve exited before it was ready:\n" + "".join(log)
            log.append(line)
            if match := re.search(r"metrics on (http://\S+/metrics)", line):
                metrics_url = match[1]
            if match := re.search(r"cloudarcade serving \S+ on (http://\S+)", line):
                url = match[1]
        reader = asyncio.ensure_future(_keep_reading(process.stderr, log))
        yield ServerProcess(process, url, metrics_url, log)
    finally:
        await _stop(process)
    await reader


async def _keep_reading(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


async def _scrape(url: str) -> dict[str, float]:
    """Samples of a Prometheus text page, ``name{labels}`` → value."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, response.status
        text = await response.text()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items()
               if k.split("{", 1)[0] == name and all(w in k for w in want))


async def _until_async(predicate: Callable[[], Awaitable[bool]], timeout: float,
                       what: str) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_serve_profiles_file_metrics_port_and_play_headless_json(
    served: ServerProcess,
) -> None:
    # --metrics moves /metrics off the public port onto its own.
    async with aiohttp.ClientSession() as http:
        async with http.get(served.url + "/metrics") as response:
            assert response.status == 404
        async with http.get(served.url + "/catalog") as response:
            catalog = await response.json()
    assert "lab-link" in catalog["profiles"]  # --profiles FILE: offered by name
    assert "ideal" in catalog["profiles"]  # beside the shipped ones
    before = await _scrape(served.metrics_url)

    # play --headless --json: a JSON summary on stdout of what it measured.
    play = await _cli("play", "--headless", "--json", "--url", served.url, "--game", "probe",
                      *SMALL, "--duration", "2", "--input-interval", "0.2")
    out, err = await asyncio.wait_for(play.communicate(), 60)
    assert play.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["frames_decoded"] >= 10, summary
    assert summary["fps"] > 0 and summary["frame_latency_ms"]["n"] > 0, summary
    assert summary["inputs_sent"] >= 3, summary
    assert 0 < summary["inputs_reflected"] <= summary["inputs_sent"], summary
    assert summary["input_to_photon_ms"]["p50"] > 0, summary
    assert summary["stack"] == "tuned" and summary["session"], summary

    # A client asks for the file's profile by name: its relay runs, and the
    # metrics port shows the session and its netsim link.
    client = HeadlessClient(ClientOptions(url=served.url, game="probe", profile="lab-link",
                                          resolution="320x180", fps=30, bitrate="500k"))
    try:
        await client.connect()
        await client.wait_for_frames(10, timeout=15)

        async def relayed() -> bool:
            now = await _scrape(served.metrics_url)
            return _total(now, "cloudarcade_netsim_packets_total", profile="lab-link",
                          direction="downlink") > 0

        await _until_async(relayed, 10, "netsim packets of profile lab-link")
    finally:
        await client.close()
    after = await _scrape(served.metrics_url)
    started = (_total(after, "cloudarcade_sessions_started_total")
               - _total(before, "cloudarcade_sessions_started_total"))
    assert started == 2, started  # the play command's session and the client's
    assert _total(after, "cloudarcade_frames_encoded_total", profile="lab-link") >= 10


async def _window(url: str) -> asyncio.subprocess.Process:
    """``cloudarcade play`` (the desktop window) on SDL's dummy driver."""
    return await _cli("play", "--url", url, "--game", "probe", *SMALL,
                      stdout=asyncio.subprocess.DEVNULL)


async def _streaming_sessions(metrics_url: str) -> float:
    return _total(await _scrape(metrics_url), "cloudarcade_sessions_active")


async def test_desktop_window_ends_cleanly_on_sigterm_with_a_goodbye(
    served: ServerProcess,
) -> None:
    window = await _window(served.url)
    try:
        async def streaming() -> bool:
            samples = await _scrape(served.metrics_url)
            return (_total(samples, "cloudarcade_sessions_active") == 1
                    and _total(samples, "cloudarcade_frames_sent_total") > 10)

        await _until_async(streaming, 30, "the window's session to stream")
        window.send_signal(signal.SIGTERM)
        assert window.stderr is not None
        err = (await asyncio.wait_for(window.stderr.read(), 15)).decode()
        assert await asyncio.wait_for(window.wait(), 5) == 0, err[-2000:]
        assert "Traceback" not in err, err[-2000:]

        async def closed() -> bool:
            return await _streaming_sessions(served.metrics_url) == 0

        # A goodbye, not a vanished client: the server closes the session at
        # once rather than after its liveness timeout.
        await _until_async(closed, 10, "the session to close")
        ended = _total(await _scrape(served.metrics_url), "cloudarcade_sessions_ended_total",
                       reason="closed")
        assert ended == 1, ended
    finally:
        await _stop(window)


async def test_desktop_window_exits_1_naming_a_lost_connection(
    served: ServerProcess,
) -> None:
    window = await _window(served.url)
    try:
        async def streaming() -> bool:
            samples = await _scrape(served.metrics_url)
            return _total(samples, "cloudarcade_frames_sent_total") > 10

        await _until_async(streaming, 30, "the window's session to stream")
        # The server goes away (it closes its sessions as it stops).
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 15) == 0
        assert window.stderr is not None
        err = (await asyncio.wait_for(window.stderr.read(), 30)).decode()
        code = await asyncio.wait_for(window.wait(), 5)
    finally:
        await _stop(window)
    assert code == 1, err[-2000:]
    assert "cloudarcade play: connection lost" in err, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
