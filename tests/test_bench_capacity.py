"""Per-session cost: the CPU-seconds metric, and ``cloudarcade bench capacity``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cloudarcade.bench.capacity import Ramp, Rule
from cloudarcade.metrics.definitions import Metrics
from cloudarcade.metrics.session import SessionMetrics

LABELS = {"game": "pong", "codec": "h264", "profile": "none"}


def _cpu(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("cloudarcade_session_cpu_seconds_total", LABELS)
    assert value is not None
    return value


def test_session_cpu_seconds_count_the_session_threads_cpu_time() -> None:
    registry = CollectorRegistry()
    session = SessionMetrics(Metrics(registry), **LABELS)

    def busy() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        session.thread_cpu()  # everything since the thread started

    def idle() -> None:
        session.thread_cpu()
        time.sleep(0.1)  # waiting costs no CPU
        session.thread_cpu()

    for target in (busy, idle):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    counted = _cpu(registry)
    assert counted >= 0.05
    # The idle thread added only its own (small) CPU time, not the 0.1 s it slept.
    assert counted < 0.05 + 0.1


# -- the ramp's rules (sans-I/O) --------------------------------------------------


def _result(fps: float, p99: float | None) -> dict[str, Any]:
    return {"fps": fps, "frame_latency_ms": {"p50": 5.0, "p99": p99}}


def test_a_step_passes_only_when_every_session_holds_fps_and_latency() -> None:
    rule = Rule()
    assert rule.check(30, [_result(29.9, 20.0), _result(28.5, 49.0)], expected=2) == []
    reasons = rule.check(30, [_result(28.4, 20.0), _result(30.0, 51.0)], expected=3)
    assert len(reasons) == 3
    assert "1 of 3 sessions failed" in reasons[0]
    assert "below 95% of 30 fps (lowest 28.4)" in reasons[1]
    assert "above 50 ms (worst 51.0)" in reasons[2]
    assert rule.check(30, [_result(30.0, None)], expected=1)  # no latency known: not a pass


def test_the_ramp_stops_after_the_first_confirmed_failure() -> None:
    ramp = Ramp(start=2, step=2, limit=7, confirm=0)
    seen = []
    while (n := ramp.next()) is not None:
        seen.append(n)
        ramp.record(n, passed=n < 6)
    assert seen == [2, 4, 6] and ramp.max_sessions == 4
    full = Ramp(start=1, step=3, limit=7)
    while (n := full.next()) is not None:
        full.record(n, passed=True)
    assert full.passed == [1, 4, 7] and full.max_sessions == 7
    first = Ramp(confirm=0)
    first.record(first.next() or 0, passed=False)
    assert first.max_sessions == 0 and first.next() is None
    with pytest.raises(ValueError, match="step: expected 1 or more"):
        Ramp(step=0)
    # confirm=1: a failed step is measured once more; a pass on the second try counts.
    noisy = Ramp(start=1, step=1, limit=4, confirm=1)
    outcomes = {1: [True], 2: [False, True], 3: [False, False]}
    tried = []
    while (n := noisy.next()) is not None:
        tried.append(n)
        noisy.record(n, outcomes[n].pop(0))
    assert tried == [1, 2, 2, 3, 3] and noisy.max_sessions == 2 and noisy.failed == 3


# -- a real ramp -------------------------------------------------------------------


@pytest.mark.slow
def test_a_short_ramp_to_two_sessions_writes_its_outputs(tmp_path: Path) -> None:
    out = tmp_path / "capacity"
    process = subprocess.run(
        [sys.executable, "-m", "cloudarcade.cli", "bench", "capacity", "--game", "pong",
         "--resolution", "320x180", "--fps", "30", "--max", "2", "--warmup", "0.3",
         "--duration", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=150,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    data = json.loads((out / "capacity.json").read_text())
    rows = data["rows"]
    sessions = [r["sessions"] for r in rows]
    # 1, then 2 if 1 passed; a failed step is measured once more (--confirm 1).
    assert sessions == sorted(sessions) and set(sessions) <= {1, 2} and sessions[0] == 1
    assert len(sessions) <= 4
    assert data["max_sessions"] == max([r["sessions"] for r in rows if r["passed"]], default=0)
    assert data["args"]["game"] == "pong" and data["rule"] == {"fps_ratio": 0.95, "p99_ms": 50.0}
    for row in rows:
        assert len(row["clients"]) == row["sessions"]  # every client measured
        assert row["fps_min"] <= row["fps_median"]
        assert row["frame_latency_p50_ms"] <= row["frame_latency_p99_ms"]
        assert row["server_cpu_per_session"] > 0 and row["server_rss_mb"] > 0
        assert row["client_cpu_per_session"] > 0
        # The sessions' own threads (the new metric) are part of the server's CPU.
        assert 0 < row["session_threads_cpu_per_session"] <= row["server_cpu_per_session"]
        assert row["passed"] == (not row["reasons"])
    assert (out / "capacity.png").stat().st_size > 0
    assert f"max_sessions: {data['max_sessions']}" in process.stdout


def test_bad_capacity_options_name_what_was_wrong(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "cloudarcade.cli", "bench", "capacity", "--step", "0",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
    )
    assert process.returncode == 2
    assert "step: expected 1 or more, got 0" in process.stderr
