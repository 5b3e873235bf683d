"""A real Prometheus server scrapes a real cloudarcade server streaming 30 fps to a client."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.client.headless import ClientOptions, HeadlessClient

from .prometheus_tools import prometheus_tool

pytestmark = pytest.mark.slow

FPS = 30
OPS = Path(__file__).resolve().parent.parent / "ops"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def game_server(tmp_path: Path) -> AsyncIterator[int]:
    """``cloudarcade serve`` (a subprocess) with a headless client receiving FPS frames/s."""
    server = ServerProcess(
        args=["--game", "pong", "--resolution", "640x360", "--fps", str(FPS), "--bitrate", "1M"],
        log_path=tmp_path / "server.log",
    )
    url = await server.start()
    client = HeadlessClient(ClientOptions(url=url))
    try:
        await client.connect()
        await client.wait_for_frames(5, timeout=15)
        yield int(url.rsplit(":", 1)[1])
    finally:
        await client.close()
        await server.stop()


async def query(client: aiohttp.ClientSession, base: str, promql: str) -> float | None:
    async with client.get(f"{base}/api/v1/query", params={"query": promql}) as response:
        answer = await response.json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_reports_the_frame_rate(game_server: int, tmp_path: Path) -> None:
    binary = prometheus_tool("prometheus")
    shutil.copy(OPS / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        "  - job_name: cloudarcade\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{game_server}']}}]\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
            rate = per_session = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.returncode is None, log_path.read_text()[-3000:]
                try:
                    async with client.get(f"{base}/-/ready") as response:
                        ready = response.status == 200
                    # rate() divides by its whole window: wait until the series is
                    # older than the window, or it reads low.
                    samples = (
                        await query(
                            client, base, "count_over_time(cloudarcade_frames_encoded_total[10s])"
                        )
                        if ready
                        else None
                    )
                    if samples is not None and samples >= 8:
                        rate = await query(
                            client, base, "rate(cloudarcade_frames_encoded_total[5s])"
                        )
                        per_session = await query(
                            client,
                            base,
                            'game:cloudarcade_frames_sent:rate1m_per_session{game="pong"}',
                        )
                except aiohttp.ClientConnectionError:
                    pass  # not listening yet
                if rate is not None and per_session is not None:
                    break
                await asyncio.sleep(0.25)
            assert rate is not None, "no rate within 60 s:\n" + log_path.read_text()[-3000:]
            # Frames are counted as they are encoded: a positive rate, not above the
            # configured frame rate (generous for a loaded machine; the rate
            # itself is a benchmark figure).
            assert 0 < rate <= FPS * 1.25, rate
            # The shipped recording rule, evaluated by the real server. Its 1m
            # window is still filling (so it reads low): promtool's rule tests
            # check its value; here, that it loads and yields a figure.
            assert per_session is not None
            assert 0 < per_session <= FPS * 1.25
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
