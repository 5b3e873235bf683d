"""``cloudarcade bench capacity``: how many sessions one server holds.

One server (``cloudarcade serve`` in a subprocess) and, for N = 1, 2, ...,
N headless clients, each in a process of its own (or a Ray task on another
node with ``--cluster``). All N connect, then start together: a warm-up, then
a window of ``--duration`` seconds in which each client measures delivered
fps and frame latency (server render end → client decode). Over the same
window the ramp reads the server's CPU time and RSS from ``/proc`` and the
sessions' own thread CPU from its ``cloudarcade_session_cpu_seconds_total``.

A step passes when every session delivers ≥ 95 % of the target fps and every
session's p99 frame latency is ≤ 50 ms. The ramp stops after the first step
that fails; ``max_sessions`` is the largest N that passed. ``capacity.json``
(one row per N) and ``capacity.png`` go to ``--out``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from cloudarcade.bench.metadata import git_state, machine, versions
from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.bench.soak import cpu_seconds, rss_kib

logger = logging.getLogger(__name__)

CAPACITY_FILE = "capacity.json"
PLOT_FILE = "capacity.png"


@dataclass(frozen=True)
class Rule:
    """What a step must hold to pass."""

    fps_ratio: float = 0.95
    p99_ms: float = 50.0

    def check(self, fps_target: float, results: list[dict[str, Any]], expected: int) -> list[str]:
        """Why a step with these per-session results fails; empty when it passes."""
        reasons = []
        if len(results) < expected:
            reasons.append(f"{expected - len(results)} of {expected} sessions failed")
        low = [r["fps"] for r in results if r["fps"] < self.fps_ratio * fps_target]
        if low:
            reasons.append(f"{len(low)} session(s) below {self.fps_ratio:.0%} of {fps_target:g} "
                           f"fps (lowest {min(low):.1f})")
        p99s = [r["frame_latency_ms"]["p99"] for r in results]
        high = [p for p in p99s if p is None or p > self.p99_ms]
        if high:
            worst = max((p for p in high if p is not None), default=None)
            reasons.append(f"{len(high)} session(s) with p99 frame latency above {self.p99_ms:g} ms"
                           + (f" (worst {worst:.1f})" if worst is not None else ""))
        return reasons


@dataclass
class Ramp:
    """The sessions to try next (sans-I/O): ``start``, ``start + step``, ... up to
    ``limit``, stopping after the first step that fails.

    On a shared, noisy machine one preempted frame can fail a step: a failed N
    is measured again up to ``confirm`` times, and fails only if every try did.
    """

    start: int = 1
    step: int = 1
    limit: int = 32
    confirm: int = 1
    passed: list[int] = field(default_factory=list)
    failed: int | None = None
    _tries: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.confirm < 0:
            raise ValueError(f"confirm: expected 0 or more, got {self.confirm}")
        for name in ("start", "step", "limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected 1 or more, got {getattr(self, name)}")
        if self.start > self.limit:
            raise ValueError(f"start {self.start} is above the limit {self.limit}")

    def next(self) -> int | None:
        """The next N to measure, or None when the ramp is over."""
        if self.failed is not None:
            return None
        n = self.passed[-1] + self.step if self.passed else self.start
        if self._tries.get(n, 0) and n not in self.passed:
            return n  # a failed try, measured again
        return n if n <= self.limit else None

    def record(self, n: int, passed: bool) -> None:
        tries = self._tries[n] = self._tries.get(n, 0) + 1
        if passed:
            self.passed.append(n)
        elif tries > self.confirm:
            self.failed = n

    @property
    def max_sessions(self) -> int:
        return self.passed[-1] if self.passed else 0


@dataclass
class CapacityConfig:
    out: Path
    game: str = "pong"
    resolution: str = "640x360"
    fps: int = 30
    codec: str = "h264"
    bitrate: str = "2M"
    start: int = 1
    step: int = 1
    limit: int = 32
    warmup: float = 2.0
    duration: float = 10.0
    confirm: int = 1
    host: str = "127.0.0.1"  # the server's bind address (other machines' clients need one)
    rule: Rule = field(default_factory=Rule)

    def client_args(self, url: str, seed: int) -> list[str]:
        return ["--url", url, "--game", self.game, "--resolution", self.resolution,
                "--fps", str(self.fps), "--codec", self.codec, "--bitrate", self.bitrate,
                "--warmup", str(self.warmup), "--duration", str(self.duration),
                "--seed", str(seed)]


class Clients(Protocol):
    """N clients of one step; see :class:`cloudarcade.bench.capacity_local.LocalClients`."""

    where: str

    async def start(self, n: int, url: str) -> None:
        """Start ``n`` clients; return once all of them receive frames."""

    async def go(self) -> None:
        """Release them all; return once every one measures."""

    async def results(self) -> list[dict[str, Any]]:
        """Each client's result (clients that failed are left out, and logged)."""

    async def close(self) -> None:
        """Stop whatever is left."""


def scrape(url: str) -> dict[str, float]:
    """Sums over labels of the server's metrics that the ramp reads."""
    with urllib.request.urlopen(url, timeout=5) as response:  # 127.0.0.1 by default
        text = response.read().decode()
    wanted = {"cloudarcade_session_cpu_seconds_total", "cloudarcade_sessions_active"}
    sums = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                sums[sample.name] += sample.value
    return sums


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


class CapacityRun:
    def __init__(self, config: CapacityConfig, clients: Clients) -> None:
        self.config = config
        self.clients = clients
        self.ramp = Ramp(config.start, config.step, config.limit, config.confirm)
        self.rows: list[dict[str, Any]] = []

    async def run(self) -> dict[str, Any]:
        config = self.config
        config.out.mkdir(parents=True, exist_ok=True)
        metrics_port = _free_port("127.0.0.1")
        server = ServerProcess(
            args=["--host", config.host, "--max-sessions", str(config.limit + 1),
                  "--metrics", f"127.0.0.1:{metrics_port}"],
            log_path=config.out / "server.log",
        )
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            url = await server.start()
            assert server.pid is not None
            while (n := self.ramp.next()) is not None:
                row = await self._step(n, url, server.pid, metrics_url)
                self.rows.append(row)
                self.ramp.record(n, row["passed"])
                logger.info("N=%d %s", n, "passed" if row["passed"] else row["reasons"])
        finally:
            await self.clients.close()
            await server.stop()
        return self.write()

    async def _step(self, n: int, url: str, pid: int, metrics_url: str) -> dict[str, Any]:
        begun = time.monotonic()
        try:
            await self.clients.start(n, url)
            connected = time.monotonic()
            await self.clients.go()
            t0, cpu0 = time.monotonic(), cpu_seconds(pid)
            m0 = await asyncio.to_thread(scrape, metrics_url)
            results = await self.clients.results()
            t1, cpu1 = time.monotonic(), cpu_seconds(pid)
            m1 = await asyncio.to_thread(scrape, metrics_url)
            rss = rss_kib(pid)
            if rss is None:
                raise ValueError(f"/proc/{pid}/status has no VmRSS")
        finally:
            await self.clients.close()
        closed = time.monotonic()
        await self._drained(metrics_url)
        window = t1 - t0
        client_cpu = [r["cpu_s"] / r["window_s"] for r in results if r.get("window_s")]
        cpu = (cpu1 - cpu0) / window
        threads = (m1["cloudarcade_session_cpu_seconds_total"]
                   - m0["cloudarcade_session_cpu_seconds_total"]) / window
        fps = [r["fps"] for r in results]
        reasons = self.config.rule.check(self.config.fps, results, n)
        return {
            "sessions": n, "passed": not reasons, "reasons": reasons,
            "fps_target": self.config.fps,
            "fps_min": min(fps) if fps else None, "fps_median": _median(fps),
            "frame_latency_p50_ms": _median(
                [r["frame_latency_ms"]["p50"] for r in results
                 if r["frame_latency_ms"]["p50"] is not None]),
            "frame_latency_p99_ms": max(
                (r["frame_latency_ms"]["p99"] for r in results
                 if r["frame_latency_ms"]["p99"] is not None), default=None),
            "server_cpu_cores": round(cpu, 3),
            "server_cpu_per_session": round(cpu / n, 4),
            "session_threads_cpu_per_session": round(threads / n, 4),
            "server_rss_mb": round(rss / 1024, 1),
            # Cores each client process used in its window (median over clients).
            "client_cpu_per_session": round(statistics.median(client_cpu), 4)
            if client_cpu else None,
            "window_s": round(window, 2),
            "connect_s": round(connected - begun, 2),
            "drain_s": round(time.monotonic() - closed, 2),
            "clients": results,
        }

    async def _drained(self, metrics_url: str, timeout: float = 30.0) -> None:
        """Wait until the server has closed every session of the step."""
        deadline = time.monotonic() + timeout
        while (await asyncio.to_thread(scrape, metrics_url))["cloudarcade_sessions_active"] > 0:
            if time.monotonic() > deadline:
                logger.warning("sessions still active %.0f s after the step", timeout)
                return
            await asyncio.sleep(0.2)

    def write(self) -> dict[str, Any]:
        config = self.config
        args = asdict(config)
        args["out"] = str(config.out)
        data = {
            "max_sessions": self.ramp.max_sessions,
            "rule": asdict(config.rule),
            "args": args,
            "clients": self.clients.where,
            "machine": machine(), "versions": versions(),
            "git": git_state(Path(__file__).resolve().parent),
            "rows": self.rows,
        }
        (config.out / CAPACITY_FILE).write_text(json.dumps(data, indent=2) + "\n")
        plot(data, config.out / PLOT_FILE)
        return data


def plot(data: dict[str, Any], path: Path) -> Path:
    """fps, frame latency, CPU per session and RSS against N, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    n = [r["sessions"] for r in rows]
    rule = data["rule"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    ax = axes[0][0]
    ax.plot(n, [r["fps_min"] for r in rows], "o-", label="min")
    ax.plot(n, [r["fps_median"] for r in rows], "s--", label="median")
    ax.axhline(rule["fps_ratio"] * data["args"]["fps"], color="red", lw=0.8, label="pass line")
    ax.set(title="delivered fps per session", xlabel="sessions")
    ax.legend()
    ax = axes[0][1]
    ax.plot(n, [r["frame_latency_p50_ms"] for r in rows], "o-", label="p50 (median session)")
    ax.plot(n, [r["frame_latency_p99_ms"] for r in rows], "s--", label="p99 (worst session)")
    ax.axhline(rule["p99_ms"], color="red", lw=0.8, label="p99 limit")
    ax.set(title="frame latency, ms", xlabel="sessions")
    ax.legend()
    ax = axes[1][0]
    ax.plot(n, [r["server_cpu_per_session"] for r in rows], "o-", label="server process")
    ax.plot(n, [r["session_threads_cpu_per_session"] for r in rows], "s--",
            label="session threads (metric)")
    ax.set(title="CPU cores per session", xlabel="sessions")
    ax.legend()
    ax = axes[1][1]
    ax.plot(n, [r["server_rss_mb"] for r in rows], "o-")
    ax.set(title="server RSS, MiB", xlabel="sessions")
    fig.suptitle(f"capacity: {data['args']['game']} {data['args']['resolution']}@"
                 f"{data['args']['fps']}: max {data['max_sessions']} sessions")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
