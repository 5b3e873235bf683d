"""``cloudarcade bench`` as a user runs it: a short ``--calibrate`` and a 2-cell sweep.

Both commands run at once (each mostly waits on its probes), at 320x180 and a
few probes each: they check what the commands produce, not how fast anything
is (the commands themselves print those figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from cloudarcade.bench.jsonl import read_probes
from cloudarcade.bench.summary import read_summary

pytestmark = pytest.mark.slow

SHORT = ["--game", "probe", "--resolution", "320x180", "--bitrate", "500k", "--stack", "tuned",
         "--probes", "5", "--probe-interval", "0.1", "--probe-timeout", "0.6", "--warmup", "0.2"]
CELLS = ("h264-320x180-30fps-500k", "h264-320x180-15fps-500k")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _bench(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudarcade.cli", "bench", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )


async def _scrape_while_running(process: asyncio.subprocess.Process, url: str) -> str | None:
    """The first /metrics page with an encoded frame on it, polled while the bench runs."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while process.returncode is None:
            try:
                async with http.get(url) as response:
                    text = await response.text()
                encoded = [line for line in text.splitlines()
                           if line.startswith("cloudarcade_frames_encoded_total{")]
                if response.status == 200 and any(not e.endswith(" 0.0") for e in encoded):
                    return text
            except aiohttp.ClientError:
                pass  # the server is not up yet, or already gone
            await asyncio.sleep(0.2)
    return None


async def test_calibrate_and_a_two_cell_sweep_with_metrics(tmp_path: Path) -> None:
    calibrated, swept = tmp_path / "calibrate", tmp_path / "sweep"
    port = _free_port()
    calibrate = await _bench("--calibrate", *SHORT, "--fps", "30", "--out", str(calibrated))
    sweep = await _bench("--profiles", "ideal", *SHORT, "--fps", "30,15",
                         "--metrics-port", str(port), "--out", str(swept))
    try:
        scraped, (cal_out, _), (sweep_out, _) = await asyncio.wait_for(asyncio.gather(
            _scrape_while_running(sweep, f"http://127.0.0.1:{port}/metrics"),
            calibrate.communicate(), sweep.communicate(),
        ), 150)
    finally:
        for process in (calibrate, sweep):
            if process.returncode is None:
                process.kill()
                await process.wait()
    cal_text, sweep_text = cal_out.decode(errors="replace"), sweep_out.decode(errors="replace")

    # --calibrate: 0 when within tolerance, 1 when not (a loaded machine may
    # miss ±2 ms); either way the checks are measured, written and reported.
    assert calibrate.returncode in (0, 1), cal_text[-3000:]
    result = json.loads((calibrated / "calibration.json").read_text())
    checks = {c["delay_ms_each_way"]: c for c in result["checks"]}
    assert set(checks) == {10, 25}, result
    assert result["passed"] == (calibrate.returncode == 0)
    assert result["passed"] == all(c["within_tolerance"] for c in checks.values())
    # The harness sees what it adds: the larger added delay moves the median up,
    # and further than the smaller one (5 probes a profile: a median moves by
    # ~9 ms sd with the 33 ms frame phase, so only the 30 ms difference is
    # checked, not the 20 ms shift itself).
    assert checks[25]["measured_shift_ms"] > 0, result
    assert checks[10]["measured_shift_ms"] < checks[25]["measured_shift_ms"], result
    assert result["relay_overhead_ms"] is not None
    assert "calibration PASSED" in cal_text or "calibration FAILED" in cal_text, cal_text[-3000:]
    report = (calibrated / "report.html").read_text()
    assert "Calibration" in report and "calib-25ms" in report
    profiles = {p.profile for p in read_probes(calibrated / "probes.jsonl")[0]}
    assert profiles == {"none", "ideal", "calib-10ms", "calib-25ms"}

    # The sweep: one row per cell, each with its own probes, in the files and the table.
    assert sweep.returncode == 0, sweep_text[-3000:]
    summaries = read_summary(swept / "summary.json")
    assert sorted(s.cell for s in summaries) == sorted(CELLS)
    probes, _ = read_probes(swept / "probes.jsonl")
    for cell in CELLS:
        assert sum(p.cell == cell for p in probes) == 5, cell
        assert cell in sweep_text, sweep_text[-3000:]
    # --metrics-port: the server's metrics were scrapeable while it ran.
    assert scraped is not None, "no /metrics with encoded frames during the sweep"
    assert 'game="probe"' in scraped
