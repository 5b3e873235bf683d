"""``cloudarcade netsim``: run the impairment relay standalone until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from cloudarcade.netsim.profile import Profile, ProfileError, get_profile
from cloudarcade.netsim.relay import Relay
from cloudarcade.netsim.stats import DirectionStats

logger = logging.getLogger(__name__)


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
    p.add_argument(
        "--timer", choices=("thread", "asyncio"), default="thread", help="departure timer"
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="run the pacer thread in SCHED_FIFO (needs CAP_SYS_NICE; steadier on busy machines)",
    )


def _line(name: str, s: DirectionStats) -> str:
    drops = ",".join(f"{k}={v}" for k, v in sorted(s.drops.items())) or "0"
    return (
        f"{name:8} in {s.packets_in:8d} out {s.packets_out:8d} drops {drops:14} "
        f"delay p50 {s.delay_p50_ms:7.2f} ms queue p50 {s.queue_delay_p50_ms:6.2f} ms "
        f"rate {s.rate_bps / 1e6:7.2f} Mbps late p99 {s.late_p99_us:6.0f} us"
    )


async def _serve(
    profile: Profile, args: argparse.Namespace, listen: tuple[str, int], forward: tuple[str, int]
) -> int:
    relay = Relay(
        profile,
        listen,
        forward,
        event_log=args.event_log,
        timer=args.timer,
        realtime=args.realtime,
    )
    try:
        addr = await relay.start()
    except OSError as exc:
        print(
            f"cloudarcade netsim: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(
        f"netsim: {addr[0]}:{addr[1]} -> {forward[0]}:{forward[1]}, profile {profile.name} "
        f"(seed {profile.seed}); Ctrl-C to stop",
        flush=True,
    )
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.interval)
            st = relay.stats()
            print(_line("uplink", st.uplink), flush=True)
            print(_line("downlink", st.downlink), flush=True)
    finally:
        await relay.close()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        listen = parse_address(args.listen)
        forward = parse_address(args.forward)
        profile = get_profile(args.profile)
    except (ValueError, ProfileError) as exc:
        print(f"cloudarcade netsim: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        profile = profile.with_seed(args.seed)
    return asyncio.run(_serve(profile, args, listen, forward))
