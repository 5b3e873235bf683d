"""``cloudarcade bench capacity``: ramp sessions on one server until they no longer hold."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cloudarcade import runtime
from cloudarcade.server.options import (
    OptionError,
    parse_bitrate,
    parse_codec,
    parse_fps,
    parse_game,
    parse_resolution,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "capacity", help="how many sessions one server holds",
        description="Ramp concurrent sessions on one server (headless clients in separate "
                    "processes) until a step fails: every session must hold 95%% of its fps "
                    "with p99 frame latency at most 50 ms. Writes capacity.json and "
                    "capacity.png to --out.",
    )
    # dest names of their own: the parent `bench` parser has --game, --fps, ... too.
    parser.add_argument("--game", dest="cap_game", default="pong")
    parser.add_argument("--resolution", dest="cap_resolution", default="640x360")
    parser.add_argument("--fps", dest="cap_fps", default="30")
    parser.add_argument("--codec", dest="cap_codec", default="h264")
    parser.add_argument("--bitrate", dest="cap_bitrate", default="2M")
    parser.add_argument("--start", type=int, default=1, help="sessions of the first step")
    parser.add_argument("--step", type=int, default=1, help="sessions added per step")
    parser.add_argument("--max", dest="limit", type=int, default=32,
                        help="stop here even if every step passed")
    parser.add_argument("--warmup", dest="cap_warmup", type=float, default=2.0,
                        help="seconds after all sessions started, not measured")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--confirm", type=int, default=1,
                        help="times a failed step is measured again before the ramp stops "
                             "(one preempted frame on a busy machine can fail a step)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the server's bind address (clients on other machines need one "
                             "they can reach)")
    parser.add_argument("--out", dest="cap_out", type=Path, default=None,
                        help="results directory (default results/capacity-DATE-TIME)")
    parser.add_argument("--cluster", dest="cap_cluster", metavar="ADDRESS", default=None,
                        help="run the clients as Ray tasks on other nodes of this cluster")
    parser.add_argument("--allow-shared-host", dest="cap_allow_shared_host",
                        action="store_true",
                        help="with --cluster, also use nodes on the server's own machine")


def run(args: argparse.Namespace, console: Console) -> int:
    from cloudarcade.bench.capacity import CapacityConfig, CapacityRun
    from cloudarcade.bench.capacity_local import LocalClients

    try:
        parse_resolution(args.cap_resolution)
        parse_bitrate(args.cap_bitrate)
        config = CapacityConfig(
            out=args.cap_out or Path("results") / datetime.now().strftime(
                "capacity-%Y%m%d-%H%M%S"),
            game=parse_game(args.cap_game), resolution=args.cap_resolution,
            fps=parse_fps(args.cap_fps), codec=parse_codec(args.cap_codec),
            bitrate=args.cap_bitrate, start=args.start, step=args.step, limit=args.limit,
            warmup=args.cap_warmup, duration=args.duration, confirm=args.confirm,
            host=args.host,
        )
        if config.duration <= 0 or config.warmup < 0:
            raise OptionError("duration: expected > 0 s and warmup >= 0 s")
        run = CapacityRun(config, LocalClients(config))
    except (OptionError, ValueError) as exc:
        print(f"cloudarcade bench capacity: {exc}", file=sys.stderr)
        return 2
    if args.cap_cluster is not None:
        from cloudarcade.bench.capacity_ray import RayClients
        from cloudarcade.bench.cluster import ClusterError

        try:
            clients = RayClients(config, args.cap_cluster,
                                 allow_shared_host=args.cap_allow_shared_host)
        except ClusterError as exc:
            print(f"cloudarcade bench capacity: {exc}", file=sys.stderr)
            return 2
        run = CapacityRun(config, clients)
    console.print(f"cloudarcade bench capacity → {config.out}  ({config.game} "
                  f"{config.resolution}@{config.fps}, clients: {run.clients.where})")
    try:
        data = runtime.run(run.run())
    except asyncio.CancelledError:
        return 130
    finally:
        disconnect = getattr(run.clients, "disconnect", None)
        if disconnect is not None:
            disconnect()
    console.print(render(data))
    console.print(f"max_sessions: {data['max_sessions']}  ({config.out / 'capacity.json'})")
    return 0


def render(data: dict[str, object]) -> Table:
    table = Table(title="sessions on one server")
    columns = ("sessions", "fps min", "fps median", "p50 ms", "p99 ms", "CPU/session",
               "threads/session", "client CPU", "RSS MiB", "pass")
    for name in columns:
        table.add_column(name, justify="right")
    rows = data["rows"]
    assert isinstance(rows, list)
    for r in rows:
        table.add_row(*(("-" if v is None else str(v)) for v in (
            r["sessions"], r["fps_min"], r["fps_median"], r["frame_latency_p50_ms"],
            r["frame_latency_p99_ms"], r["server_cpu_per_session"],
            r["session_threads_cpu_per_session"], r["client_cpu_per_session"],
            r["server_rss_mb"],
            "yes" if r["passed"] else "no: " + "; ".join(r["reasons"]))))
    return table
