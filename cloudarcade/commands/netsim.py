"""``cloudarcade netsim``: run the impairment relay standalone until Ctrl-C.

The relay runs in a relay process of its own (``netsim.engine``); this
command starts it, opens one relay and prints its stats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from cloudarcade.netsim.mapping import IDLE_TIMEOUT, MAX_MAPPINGS
from cloudarcade.netsim.netem import BACKENDS, netem_commands, netem_status
from cloudarcade.netsim.process import RelayProcess, RelayProcessError
from cloudarcade.netsim.profile import Profile, ProfileError, get_profile
from cloudarcade.netsim.stats import DirectionStats


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ValueError with a one-line reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5000")
    return host, int(port)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "netsim",
        help="run the network-impairment UDP relay standalone",
        description="Relay UDP from --listen to --forward through a network profile.",
    )
    p.add_argument("--profile", required=True, help="profile name or TOML file (FILE[:NAME])")
    p.add_argument("--listen", required=True, help="HOST:PORT the clients send to")
    p.add_argument("--forward", required=True, help="HOST:PORT of the real server")
    p.add_argument("--event-log", type=Path, help="write FILE.uplink / FILE.downlink event logs")
    p.add_argument("--seed", type=int, help="override the profile's seed")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between stats lines")
    p.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT,
                   help=f"seconds before an idle client mapping closes (default {IDLE_TIMEOUT:g})")
    p.add_argument("--max-mappings", type=int, default=MAX_MAPPINGS,
                   help=f"client mappings open at once; beyond, dropped (default {MAX_MAPPINGS})")
    p.add_argument("--backend", choices=BACKENDS, default="relay",
                   help="relay: the user-space relay (default); netem: print the `tc netem` "
                        "commands for the profile, where the kernel has netem")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="run the relay process in SCHED_FIFO (needs CAP_SYS_NICE; steadier on busy machines)",
    )


def _line(name: str, s: DirectionStats) -> str:
    drops = ",".join(f"{k}={v}" for k, v in sorted(s.drops.items())) or "0"
    return (
        f"{name:8} in {s.packets_in:8d} out {s.packets_out:8d} drops {drops:14} "
        f"delay p50 {s.delay_p50_ms:7.2f} ms queue p50 {s.queue_delay_p50_ms:6.2f} ms "
        f"rate {s.rate_bps / 1e6:7.2f} Mbps late p99 {s.late_p99_us:6.0f} us "
        f"read lag p99 {s.read_lag_p99_us:6.0f} us"
    )


async def _serve(
    profile: Profile, args: argparse.Namespace, listen: tuple[str, int], forward: tuple[str, int]
) -> int:
    process = RelayProcess(realtime=args.realtime)
    await process.start()
    try:
        try:
            relay = await process.open(
                profile, forward, listen=listen, event_log=args.event_log,
                idle_timeout=args.idle_timeout, max_mappings=args.max_mappings,
            )
        except RelayProcessError as exc:
            print(f"cloudarcade netsim: cannot listen on {args.listen}: {exc}", file=sys.stderr)
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        addr = relay.address
        print(
            f"netsim: {addr[0]}:{addr[1]} -> {forward[0]}:{forward[1]}, profile {profile.name} "
            f"(seed {profile.seed}), relay process {process.pid}; Ctrl-C to stop",
            flush=True,
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.interval)
            st = await relay.stats()
            print(_line("uplink", st.uplink), flush=True)
            print(_line("downlink", st.downlink), flush=True)
            print(f"mappings {st.mappings} open, {st.mappings_expired} expired", flush=True)
        await relay.close()
    except RelayProcessError as exc:
        print(f"cloudarcade netsim: the relay process failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await process.close()
    return 0


def _netem(profile: Profile) -> int:
    status = netem_status()
    if not status.available:
        print(f"cloudarcade netsim: the netem backend is not available: {status.reason}; "
              "the default relay backend needs neither root nor netem", file=sys.stderr)
        return 2
    for command in netem_commands(profile):
        print(" ".join(command))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        listen = parse_address(args.listen)
        forward = parse_address(args.forward)
        profile = get_profile(args.profile)
        if args.idle_timeout <= 0:
            raise ValueError(f"--idle-timeout must be > 0 s, got {args.idle_timeout:g}")
        if args.max_mappings < 1:
            raise ValueError(f"--max-mappings must be >= 1, got {args.max_mappings}")
    except (ValueError, ProfileError) as exc:
        print(f"cloudarcade netsim: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        profile = profile.with_seed(args.seed)
    if args.backend == "netem":
        return _netem(profile)
    return asyncio.run(_serve(profile, args, listen, forward))
