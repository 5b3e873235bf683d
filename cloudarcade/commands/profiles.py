"""``cloudarcade profiles``: list network profiles with their key numbers."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from cloudarcade.netsim.profile import LinkSpec, ProfileError, load_profiles
from cloudarcade.netsim.trace import load_trace


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "profiles",
        help="list network profiles",
        description="List network profiles (shipped, or from a TOML file) with key numbers.",
    )
    p.add_argument("--file", help="a profile TOML file instead of the shipped profiles")
    p.add_argument("--sources", action="store_true", help="add the source column")


def _rate(spec: LinkSpec) -> str:
    if spec.trace is not None:
        return f"trace {load_trace(spec.trace).mean_rate_bps / 1e6:.0f}"
    return "-" if spec.rate_mbps is None else f"{spec.rate_mbps:g}"


def _cells(spec: LinkSpec) -> list[str]:
    loss = spec.mean_loss()
    jitter = f"{spec.jitter_ms:g} {spec.distribution}" if spec.jitter_ms else "-"
    return [f"{spec.delay_ms:g}", jitter, f"{loss * 100:.2g}" if loss else "-", _rate(spec)]


def run(args: argparse.Namespace) -> int:
    try:
        profiles = load_profiles(args.file)
    except ProfileError as exc:
        print(f"cloudarcade profiles: {exc}", file=sys.stderr)
        return 2
    table = Table(title="network profiles (down / up; ms, %, Mbps)")
    for col in ("profile", "delay", "jitter", "loss %", "rate", "description"):
        table.add_column(col, overflow="fold")
    if args.sources:
        table.add_column("source", overflow="fold")
    for p in profiles.values():
        down, up = _cells(p.downlink), _cells(p.uplink)
        row = [p.name, *(d if d == u else f"{d} / {u}" for d, u in zip(down, up, strict=True))]
        row.append(p.description)
        if args.sources:
            row.append(p.source)
        table.add_row(*row)
    Console().print(table)
    return 0
