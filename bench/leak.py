"""Connect/disconnect cycles against an in-process server: do resources come back?

``python -m cloudarcade.bench.leak --cycles 200`` runs a server and the
headless client in this process; each cycle connects, waits for a few
frames, then leaves, every ``--abrupt-every``-th one abruptly (its ICE
sockets closed with no goodbye, as when a client is killed) so that the
server has to notice by itself. It prints resident memory (VmRSS), open file
descriptors, threads and asyncio tasks at the start (after a warm-up) and at
the end, once every session has been reclaimed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from cloudarcade.bench.soak import rss_kib


@dataclass
class Resources:
    """What a process holds; ``rss_kib`` from /proc/self/status."""

    rss_kib: int
    fds: int
    threads: int
    tasks: int

    @classmethod
    def now(cls) -> Resources:
        gc.collect()
        return cls(
            rss_kib=rss_kib(os.getpid()) or 0,
            fds=len(os.listdir("/proc/self/fd")),
            # The loop's default executor ("asyncio_N") lives as long as the loop.
            threads=sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_")),
            tasks=sum(1 for t in asyncio.all_tasks() if not t.done()),
        )


def die_abruptly(pc: Any) -> None:
    """Close a peer connection's ICE sockets and nothing else: to the other side,
    the peer vanished (no DTLS close, no RTCP BYE, no SCTP abort)."""
    transports = {t.receiver.transport.transport for t in pc.getTransceivers()
                  if t.receiver.transport is not None}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport.transport)
    for ice in transports:
        for protocol in list(ice._connection._protocols):
            if protocol.transport is not None:
                protocol.transport.close()


async def cycles(
    url: str, sessions: dict[int, Any], count: int, *, abrupt_every: int, frames: int = 3,
    on_cycle: Any = None,
) -> int:
    """Run ``count`` connect/leave cycles; returns how many ended abruptly."""
    from cloudarcade.client.headless import ClientOptions, HeadlessClient

    abrupt = 0
    for i in range(count):
        client = HeadlessClient(ClientOptions(url=url, game="probe"))
        try:
            await client.connect()
            await client.wait_for_frames(frames, timeout=15)
            if abrupt_every and i % abrupt_every == abrupt_every - 1:
                abrupt += 1
                die_abruptly(client.pc)
                # The client's own objects are torn down once the server has
                # given up on it, so that only the server's reclaiming is measured.
                await wait_until(lambda sid=client.session_id: sid not in sessions, 30)
        finally:
            # A vanished client's pc.close() sends nothing: its sockets are gone.
            with contextlib.suppress(Exception):
                await client.close()
        if on_cycle is not None:
            on_cycle(i)
    return abrupt


async def wait_until(predicate: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.05)
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from cloudarcade.server.app import SESSIONS, ServerConfig, create_app
    from cloudarcade.server.limits import Limits
    from cloudarcade.server.options import SessionOptions

    config = ServerConfig(
        defaults=SessionOptions(game="probe", width=640, height=360, fps=30, bitrate=1_000_000),
        limits=Limits(liveness_timeout=args.liveness_timeout),
        max_sessions=64,
    )
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    sessions = app[SESSIONS]
    try:
        # Warm-up: first use loads codecs, pygame, thread pools.
        await cycles(url, sessions, args.warmup, abrupt_every=2)
        await wait_until(lambda: not sessions, 30)
        start = Resources.now()
        began = time.monotonic()

        halfway: list[Resources] = []

        def progress(i: int) -> None:
            if i + 1 == args.cycles // 2:
                halfway.append(Resources.now())
            if (i + 1) % 20 == 0:
                r = Resources.now()
                print(f"cycle {i + 1}: rss {r.rss_kib / 1024:.1f} MiB, fds {r.fds}, "
                      f"threads {r.threads}, tasks {r.tasks}", file=sys.stderr, flush=True)

        abrupt = await cycles(url, sessions, args.cycles, abrupt_every=args.abrupt_every,
                              on_cycle=progress)
        reclaimed = await wait_until(lambda: not sessions, 30)
        await asyncio.sleep(0.5)
        end = Resources.now()
    finally:
        await runner.cleanup()
    return {
        "cycles": args.cycles, "abrupt": abrupt, "seconds": round(time.monotonic() - began, 1),
        "all_sessions_reclaimed": reclaimed, "start": asdict(start), "end": asdict(end),
        "growth": {k: getattr(end, k) - getattr(start, k) for k in asdict(start)},
        # Allocator arenas and codec caches fill during the first cycles; a
        # leak keeps growing in the second half too.
        "second_half_growth": (
            {k: getattr(end, k) - getattr(halfway[0], k) for k in asdict(start)}
            if halfway else None
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.leak",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--abrupt-every", type=int, default=4,
                        help="every Nth client vanishes without closing (0: none)")
    parser.add_argument("--liveness-timeout", type=float, default=2.0,
                        help="server: seconds without RTCP before a viewer is dropped")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        s, e = result["start"], result["end"]
        print(f"{result['cycles']} cycles ({result['abrupt']} abrupt) in {result['seconds']} s; "
              f"all sessions reclaimed: {result['all_sessions_reclaimed']}")
        half = result["second_half_growth"] or {}
        print(f"{'':8}{'start':>10}{'end':>10}{'growth':>10}{'2nd half':>10}")
        for key in ("rss_kib", "fds", "threads", "tasks"):
            print(f"{key:8}{s[key]:>10}{e[key]:>10}{e[key] - s[key]:>+10}"
                  f"{half.get(key, 0):>+10}")
    return 0 if result["all_sessions_reclaimed"] else 1


if __name__ == "__main__":
    sys.exit(main())
