"""Benchmark of the netsim relay: its own timing error, overhead and CPU.

    python -m cloudarcade.bench.netsim_bench [--duration 3] [--rates 1000,5000,20000]

For each event loop (asyncio, uvloop), departure timer (the pacer thread, or
asyncio ``call_at``) and packet rate, a load generator in a separate process
sends 200-byte packets through a relay whose profile is a constant 10 ms delay,
to a sink in the same generator process. Printed per point:

* ``sched err``: actual minus scheduled departure inside the relay (p50/p99/max, us);
* ``e2e extra``: sink receive minus send minus 10 ms, i.e. everything the relay
  adds (receive path, pacing, two loopback hops) (p50/p99, us);
* ``cpu``: the relay process's CPU time / wall time (all its threads).

Then a 720p60 stream at 20 Mbps (frames of 1200-byte packets sent as a burst
every 16.7 ms) through profile ``5g-sa``: delivered rate, drops and CPU.
The generator paces with sleep() and sends a burst each millisecond, so the
relay sees the bursty arrivals a real sender produces.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import multiprocessing as mp
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from cloudarcade.netsim.profile import Profile, get_profile, parse_profiles
from cloudarcade.netsim.relay import Relay

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!Id")
DELAY = 0.010


def _generator(conn: Connection, rate: float, duration: float, size: int, frame_fps: float) -> None:
    """Child process: sink + paced sender; returns one-way delays (s) via ``conn``."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.5)
    conn.send(sink.getsockname())
    relay_addr = conn.recv()
    delays: list[float] = []
    received = 0

    def drain() -> None:
        nonlocal received
        while True:
            try:
                data = sink.recv(65535)
            except TimeoutError:
                return
            except OSError:
                return
            now = time.perf_counter()
            received += len(data)
            delays.append(now - HEADER.unpack_from(data)[1])

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    tick = 1.0 / frame_fps if frame_fps else 0.001
    per_tick = rate * tick
    start = time.perf_counter()
    sent = 0
    seq = 0
    n_ticks = int(duration / tick)
    pad = b"\0" * (size - HEADER.size)
    for k in range(n_ticks):
        target = start + k * tick
        pause = target - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        due = int((k + 1) * per_tick) - sent
        for _ in range(due):
            out.sendto(HEADER.pack(seq, time.perf_counter()) + pad, relay_addr)
            seq += 1
        sent += due
    wall = time.perf_counter() - start
    reader.join()
    conn.send((seq, np.array(delays), received, wall))


@dataclass
class Point:
    loop: str
    timer: str
    rate: float
    sent: int
    delivered: int
    sched: tuple[float, float, float]
    extra: tuple[float, float]
    cpu: float
    rate_mbps: float = 0.0


def _run_point(
    loop_name: str,
    timer: str,
    profile: Profile,
    rate: float,
    duration: float,
    size: int,
    fps: float = 0.0,
    expected_delay: float = DELAY,
) -> Point:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_generator, args=(child, rate, duration, size, fps), daemon=True)
    proc.start()
    sink_addr = parent.recv()

    async def main() -> Point:
        relay = Relay(
            profile,
            ("127.0.0.1", 0),
            sink_addr,
            timer=timer.removesuffix("+rt"),
            window=2_000_000,
            realtime=timer.endswith("+rt"),
        )
        addr = await relay.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        parent.send(addr)
        loop = asyncio.get_running_loop()
        sent, delays, received, _ = await loop.run_in_executor(None, parent.recv)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        rec = relay._dirs["uplink"].rec
        late = np.array(rec.late) * 1e6
        await relay.close()
        extra = (delays - expected_delay) * 1e6
        return Point(
            loop_name,
            timer,
            rate,
            sent,
            len(delays),
            (float(np.percentile(late, 50)), float(np.percentile(late, 99)), float(late.max())),
            (float(np.percentile(extra, 50)), float(np.percentile(extra, 99))),
            cpu,
            received * 8 / duration / 1e6,
        )

    try:
        return _with_loop(loop_name, main)
    finally:
        proc.join(timeout=5)


def _with_loop(name: str, main: Callable[[], Coroutine[Any, Any, Point]]) -> Point:
    if name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())
    return asyncio.run(main())


def _print_table(points: list[Point]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency; plain text keeps the bench usable without it
        for p in points:
            print(p)
        return
    table = Table(title="netsim relay: 10 ms constant delay, 200 B packets")
    for col in (
        "loop",
        "timer",
        "pkt/s",
        "delivered",
        "sched err p50/p99/max us",
        "e2e extra p50/p99 us",
        "cpu",
    ):
        table.add_column(col, justify="right")
    for p in points:
        table.add_row(
            p.loop,
            p.timer,
            f"{p.rate:.0f}",
            f"{p.delivered}/{p.sent}",
            f"{p.sched[0]:.0f} / {p.sched[1]:.0f} / {p.sched[2]:.0f}",
            f"{p.extra[0]:.0f} / {p.extra[1]:.0f}",
            f"{p.cpu * 100:.0f}%",
        )
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.netsim_bench")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per point")
    parser.add_argument("--rates", default="1000,5000,20000", help="packets/s, comma-separated")
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument(
        "--timers",
        default="thread,thread+rt,asyncio",
        help="thread, thread+rt (pacer in SCHED_FIFO), asyncio",
    )
    args = parser.parse_args(argv)
    constant = parse_profiles(
        {"bench": {"description": "10 ms constant", "source": "bench", "delay_ms": 10}},
        "<bench>",
        None,
    )["bench"]
    points = []
    for loop_name in args.loops.split(","):
        for timer in args.timers.split(","):
            for rate in (float(r) for r in args.rates.split(",")):
                points.append(_run_point(loop_name, timer, constant, rate, args.duration, 200))
                print(f"  done {loop_name} {timer} {rate:.0f}", file=sys.stderr)
    _print_table(points)
    # 720p60 at 20 Mbps through 5g-sa: frames of 1200 B packets every 16.7 ms.
    # The generator sends client -> server, so give the uplink the downlink's numbers.
    sa = get_profile("5g-sa")
    prof = dataclasses.replace(sa, uplink=sa.downlink)
    pkt_rate = 20e6 / 8 / 1200
    print(
        f"\n720p60 @ 20 Mbps ({pkt_rate:.0f} pkt/s of 1200 B, 60 bursts/s) through 5g-sa "
        "downlink (4 +- 1 ms, 220 Mbps; extra includes each burst's serialisation):"
    )
    for loop_name in args.loops.split(","):
        p = _run_point(
            loop_name,
            "thread",
            prof,
            pkt_rate,
            max(args.duration, 5.0),
            1200,
            fps=60.0,
            expected_delay=0.004,
        )
        print(
            f"  {loop_name:8} delivered {p.delivered}/{p.sent} packets, "
            f"{p.rate_mbps:.1f} Mbps, extra delay over 4 ms p50 {p.extra[0] / 1e3:.2f} ms "
            f"p99 {p.extra[1] / 1e3:.2f} ms, relay cpu {p.cpu * 100:.0f}% of one core"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
