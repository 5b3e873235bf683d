"""Soak: one client streaming for a long time; do memory and latency stay put?

``python -m cloudarcade.bench.soak --minutes 30 --profile 5g-sa`` starts
``cloudarcade serve`` as a subprocess, connects the headless client at
720p60 through the netsim profile, presses a key at jittered intervals, and
samples the server's resident memory (VmRSS of its process) every few
seconds. At the end it prints the server RSS, frame latency (render_end ->
decoded) and input-to-photon p50/p99 over the first and the last window
(``--window``, default 60 s). With ``--out FILE.jsonl`` every sample is
written as it is taken, so an interrupted soak (SIGINT/SIGTERM: it stops
cleanly and still prints its summary) leaves valid partial results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np


def rss_kib(pid: int) -> int | None:
    """VmRSS of process ``pid`` in KiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    p50, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 99])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2), "n": len(values)}


class Samples:
    """Timestamped samples of each kind, mirrored to a JSONL file when given."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self.series: dict[str, list[tuple[float, float]]] = {"frame": [], "i2p": [], "rss": []}

    def add(self, kind: str, value: float, at: float | None = None) -> None:
        t = (at if at is not None else time.monotonic()) - self.t0
        self.series[kind].append((t, value))
        if self.out is not None:
            self.out.write(json.dumps({"t": round(t, 4), "kind": kind, "value": value}) + "\n")

    def window(self, kind: str, start: float, end: float) -> list[float]:
        return [v for t, v in self.series[kind] if start <= t < end]


def summarize(samples: Samples, window: float) -> dict[str, Any]:
    frames = samples.series["frame"]
    if not frames:
        return {"duration_s": 0.0}
    first_t = frames[0][0]
    last_t = max(t for t, _ in frames)
    span = last_t - first_t
    window = min(window, span / 2) if span > 0 else window
    out: dict[str, Any] = {"duration_s": round(span, 1), "window_s": round(window, 1)}
    for label, (a, b) in {"start": (first_t, first_t + window),
                          "end": (last_t - window, last_t + 1e-9)}.items():
        rss = samples.window("rss", a, b)
        frame = samples.window("frame", a, b)
        out[label] = {
            "server_rss_mib": round(float(np.median(rss)) / 1024, 1) if rss else None,
            "fps": round(len(frame) / window, 1) if window > 0 else None,
            "frame_latency": _pct(frame),
            "input_to_photon": _pct(samples.window("i2p", a, b)),
        }
    return out


async def soak(args: argparse.Namespace, samples: Samples) -> dict[str, Any]:
    from cloudarcade.bench.server_process import ServerProcess
    from cloudarcade.client.headless import ClientOptions, HeadlessClient
    from cloudarcade.client.results import FrameResult, ProbeResult

    log = Path(args.server_log or tempfile.mktemp(prefix="soak-server-", suffix=".log"))
    server = ServerProcess(args=["--game", args.game, "--resolution", args.resolution,
                                 "--fps", str(args.fps), "--bitrate", args.bitrate,
                                 "--ice-timeout", "30"],
                           log_path=log)
    url = await server.start()
    pid = server.pid
    assert pid is not None

    def on_frame(result: FrameResult) -> None:
        if result.server is not None:
            samples.add("frame", result.client["photon"] - result.server.render_end,
                        at=result.client["photon"])

    def on_probe(probe: ProbeResult) -> None:
        if probe.input_to_photon is not None:
            samples.add("i2p", probe.input_to_photon, at=probe.input_sent)

    client = HeadlessClient(
        ClientOptions(url=url, profile=args.profile, input_interval=args.input_interval),
        on_frame=on_frame, on_probe=on_probe,
    )

    async def sample_rss() -> None:
        while True:
            rss = rss_kib(pid)
            if rss is not None:
                samples.add("rss", rss)
            await asyncio.sleep(args.rss_interval)

    sampler = asyncio.ensure_future(sample_rss())
    interrupted = False
    try:
        await client.connect()
        await client.wait_for_frames(1, 30)
        print(f"soaking for {args.minutes} min at {args.resolution}@{args.fps} through "
              f"{args.profile}; server pid {pid}, log {log}", file=sys.stderr, flush=True)
        await client.run_inputs(args.minutes * 60)
        await asyncio.sleep(0.3)
    except asyncio.CancelledError:
        interrupted = True
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        with contextlib.suppress(Exception):
            await client.close()
        await server.stop()
    summary = summarize(samples, args.window)
    summary.update(profile=args.profile, resolution=args.resolution, fps=args.fps,
                   interrupted=interrupted, client=client.summary.to_dict())
    return summary


def _print(summary: dict[str, Any]) -> None:
    print(f"soak: {summary.get('duration_s')} s through {summary.get('profile')} at "
          f"{summary.get('resolution')}@{summary.get('fps')}"
          f"{' (interrupted)' if summary.get('interrupted') else ''}; "
          f"windows of {summary.get('window_s')} s")
    print(f"{'':7}{'rss MiB':>9}{'fps':>7}{'frame p50':>11}{'p99':>8}{'i2p p50':>10}{'p99':>8}")
    for label in ("start", "end"):
        w = summary.get(label)
        if not w:
            continue
        fl, ip = w["frame_latency"], w["input_to_photon"]
        print(f"{label:7}{w['server_rss_mib']!s:>9}{w['fps']!s:>7}{fl['p50_ms']!s:>11}"
              f"{fl['p99_ms']!s:>8}{ip['p50_ms']!s:>10}{ip['p99_ms']!s:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.soak",
                                     description="long single-client stream: memory and latency "
                                                 "at the start and the end")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--profile", default="5g-sa")
    parser.add_argument("--game", default="probe")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--bitrate", default="8M")
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds at the start and the end that are compared")
    parser.add_argument("--input-interval", type=float, default=0.25)
    parser.add_argument("--rss-interval", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="JSONL samples, written as taken")
    parser.add_argument("--server-log", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from cloudarcade import runtime

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(args.out.open("w", buffering=1)) if args.out else None
        samples = Samples(out)
        summary = runtime.run(soak(args, samples), use_uvloop=False)
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
