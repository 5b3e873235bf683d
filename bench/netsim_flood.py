"""Many source ports at a relay: does it hold its descriptors, and its session?

    python -m cloudarcade.bench.netsim_flood ports [--ports 5000] [--idle-timeout 10]
    python -m cloudarcade.bench.netsim_flood session [--ports 1100] [--profile 5g-sa]

``ports``: a normal client (the echo probe of ``netsim_probe``, 500 req/s)
talks through an ``ideal`` relay (default cap of 1,024 mappings) while a
flood process sends from ``--ports`` distinct source ports. Printed: the
client's answered requests and RTT, the relay process's descriptors at their
peak and after the idle timeout, and the relay's mapping counts and drops.

``session``: ``cloudarcade serve --profile`` in a subprocess, a headless
client on the probe game, then datagrams from ``--ports`` source ports at the
relay port of its session (the port in the server's answer). Printed: the
client's decoded frame rate before, during and after, and the server's
``cloudarcade_netsim_drops_total`` by reason. Target: >= 95 % of the frame rate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import resource
import socket
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from cloudarcade.bench.netsim_probe import child, echo_main, probe_main
from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.netsim import RelayProcess, candidate_addresses, get_profile

logger = logging.getLogger(__name__)

Address = tuple[str, int]


def flood_main(conn: Connection, target: Address, ports: int, duration: float,
               rate: float) -> None:
    """Child process: from ``ports`` distinct source ports, round-robin, send
    ``rate`` datagrams/s of 200 B to ``target`` for ``duration`` s, and on
    until each port has sent once."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for _ in range(ports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    conn.send(len({s.getsockname()[1] for s in socks}))
    payload = b"\x80" + b"\0" * 199  # an RTP-looking first byte
    start = time.perf_counter()
    sent = 0
    while sent < ports or time.perf_counter() - start < duration:
        if sent >= int((time.perf_counter() - start) * rate) + 1:
            time.sleep(0.001)  # paced: a burst would overflow the socket, not test the relay
            continue
        socks[sent % ports].sendto(payload, target)
        sent += 1
    conn.send(sent)
    for s in socks:
        s.close()


async def _wait_recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def ports_run(ports: int, idle_timeout: float, duration: float) -> None:
    echo, echo_conn = child(echo_main)
    probe, probe_conn = child(probe_main)
    echo_addr = echo_conn.recv()
    probe_conn.recv()
    async with RelayProcess() as process:
        start_fds = (await process.info())["open_fds"]
        relay = await process.open(get_profile("ideal"), echo_addr, idle_timeout=idle_timeout)
        # The client first, as a client that was there before the flood.
        probe_conn.send((relay.address, 500.0, int(500 * (duration + 2)), 200))
        await asyncio.sleep(0.5)
        logger.info("flooding relay %s:%d from %d ports", *relay.address, ports)
        flood, flood_conn = child(flood_main, relay.address, ports, duration, 2 * ports / duration)
        distinct = await _wait_recv(flood_conn)
        peak = 0
        while flood.is_alive():
            peak = max(peak, (await process.info())["open_fds"])
            await asyncio.sleep(0.1)
        sent = flood_conn.recv()
        rtts = await _wait_recv(probe_conn)
        stats = await relay.stats()
        answered = rtts[~np.isnan(rtts)] * 1e3
        print(f"flood: {sent} datagrams from {distinct} distinct source ports in {duration:g} s")
        print(f"normal client: {answered.size}/{rtts.size} answered, RTT p50 "
              f"{np.percentile(answered, 50):.3f} ms p99 {np.percentile(answered, 99):.3f} ms")
        up, down = stats.uplink, stats.downlink
        print(f"relay: uplink in {up.packets_in} out {up.packets_out}, downlink in "
              f"{down.packets_in} out {down.packets_out} drops {down.drops}; read lag p99 "
              f"{up.read_lag_p99_us:.0f} us, late p99 {up.late_p99_us:.0f} us")
        print(f"relay process descriptors: {start_fds} at start, peak {peak}; mappings "
              f"{stats.mappings} open (cap 1024), {stats.mappings_opened} opened, "
              f"uplink drops {stats.uplink.drops}")
        t0 = time.monotonic()
        while (info := await process.info())["open_fds"] > start_fds + 1:
            if time.monotonic() - t0 > idle_timeout + 10:
                break
            await asyncio.sleep(0.25)
        stats = await relay.stats()
        print(f"after {time.monotonic() - t0:.1f} s idle: descriptors {info['open_fds']} "
              f"(start {start_fds} + 1 listen socket), mappings {stats.mappings} open, "
              f"{stats.mappings_expired} expired")
        await relay.close()
    probe_conn.send(None)
    probe.join(timeout=5)
    echo.kill()


async def _drops(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url.rstrip("/") + "/metrics") as response:
        text = await response.text()
    drops: dict[str, float] = {}
    for m in re.finditer(r'^cloudarcade_netsim_drops_total\{([^}]*)\} (\S+)$', text, re.M):
        reason = re.search(r'reason="([^"]+)"', m[1])
        if reason and float(m[2]):
            drops[reason[1]] = drops.get(reason[1], 0.0) + float(m[2])
    return drops


async def session_run(ports: int, profile: str, window: float, rate: float | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(args=["--game", "probe", "--profile", profile, "--fps", "60"],
                               log_path=Path(tmp) / "server.log")
        url = await server.start()
        client = HeadlessClient(ClientOptions(url=url, game="probe"))
        try:
            await client.connect()
            await client.wait_for_frames(30, timeout=20)
            relay = candidate_addresses(client.pc.remoteDescription.sdp)[0]

            async def fps() -> float:
                n0, t0 = client.summary.frames_decoded, time.monotonic()
                await asyncio.sleep(window)
                return (client.summary.frames_decoded - n0) / (time.monotonic() - t0)

            logger.info("session relay at %s:%d", *relay)
            before = await fps()
            flood, flood_conn = child(flood_main, relay, ports, window,
                                       rate or 2 * ports / window)
            distinct = await _wait_recv(flood_conn)
            during = await fps()
            sent = await _wait_recv(flood_conn)
            flood.join(timeout=5)
            after = await fps()
            async with aiohttp.ClientSession() as http:
                drops = await _drops(http, url)
            alive = client.pc.connectionState == "connected"
        finally:
            await client.close()
            await server.stop()
    print(f"{profile} session, relay {relay[0]}:{relay[1]}: {sent} datagrams from {distinct} "
          f"distinct source ports over {window:g} s")
    print(f"decoded fps: before {before:.1f}, during {during:.1f} ({during / before:.0%}), "
          f"after {after:.1f} ({after / before:.0%}); session connected at the end: {alive}")
    print(f"server's netsim drops by reason: {drops}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.netsim_flood")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ports", help="a relay's descriptors under many source ports")
    p.add_argument("--ports", type=int, default=5000)
    p.add_argument("--idle-timeout", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=5.0, help="seconds of flood")
    s = sub.add_parser("session", help="a live session's frame rate under stray datagrams")
    s.add_argument("--ports", type=int, default=1100)
    s.add_argument("--profile", default="5g-sa")
    s.add_argument("--window", type=float, default=5.0, help="seconds per fps window")
    s.add_argument("--rate", type=float, help="datagrams/s (default: each port twice per window)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.what == "ports":
        asyncio.run(ports_run(args.ports, args.idle_timeout, args.duration))
    else:
        asyncio.run(session_run(args.ports, args.profile, args.window, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
