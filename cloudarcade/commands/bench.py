"""``cloudarcade bench``: input-to-photon across network profiles, with reports.

``cloudarcade bench`` alone runs a quick default (three profiles, our stack
and stock aiortc, about two minutes). ``cloudarcade bench compare A B`` says
what changed between two result directories.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from cloudarcade import runtime
from cloudarcade.commands import bench_capacity
from cloudarcade.server.options import FEC_MODES, STACKS, OptionError, parse_choice
from cloudarcade.server.options import parse_game as _parse_game

if TYPE_CHECKING:
    from cloudarcade.bench.report import RunResults
    from cloudarcade.bench.scenario import BenchConfig


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure input-to-photon across network profiles",
        description="Measure input-to-photon delay, stage by stage, across network profiles. "
                    "Comma-separated codecs/resolutions/fps/bitrates make a sweep matrix.",
    )
    parser.add_argument("--profiles", default="ideal,5g-sa,lte,dip",
                        help="comma-separated profile names (see `cloudarcade profiles`)")
    parser.add_argument("--game", default="terrain",
                        help="terrain (default: realistic load, more than 8 Mbit/s at 720p60), "
                             "probe (a static frame), pong or swarm")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", default="60")
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--bitrate", default="8M")
    parser.add_argument("--stack", default="tuned,stock",
                        help="tuned (ours), stock (aiortc's own, the baseline), or both")
    parser.add_argument("--client", default="headless",
                        help="who measures: headless (the Python client, photon = decoded), "
                             "chromium (the page in Debian's Chromium, photon = presented), "
                             "or both, comma-separated, side by side")
    parser.add_argument("--cc", default="gcc",
                        help="congestion controllers of the tuned stack, comma-separated: "
                             "gcc, none (fixed bitrate); several run side by side")
    parser.add_argument("--ladder", default="on", choices=("on", "off"),
                        help="the server steps the resolution and frame rate down when the "
                             "controller's target is too low for them (default on)")
    parser.add_argument("--fec", default="auto", choices=FEC_MODES,
                        help="FEC parity for the headless client's video: auto while the "
                             "link loses packets, on always, off never (default auto; "
                             "docs/fec.md)")
    parser.add_argument("--probes", type=int, default=80, help="probes per profile and cell")
    parser.add_argument("--probe-interval", type=float, default=0.15,
                        help="mean seconds between probes (jittered ±50%%)")
    parser.add_argument("--probe-timeout", type=float, default=1.0,
                        help="seconds after which a probe with no photon is a miss")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None,
                        help="results directory (default results/bench-DATE-TIME)")
    parser.add_argument("--profiles-file", type=Path, default=None,
                        help="a TOML file of extra profiles to choose from")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="expose the server's Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--calibrate", action="store_true",
                        help="check the harness: constant delays must move the median by 2d")
    add_cluster_arguments(parser)
    sub = parser.add_subparsers(dest="bench_command", metavar="{compare,capacity}")
    compare = sub.add_parser("compare", help="what changed between two runs")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)
    bench_capacity.add_parser(sub)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cluster`` and its companions (docs/cluster.md)."""
    group = parser.add_argument_group("cluster (needs cloudarcade[cluster], docs/cluster.md)")
    group.add_argument("--cluster", metavar="ADDRESS", default=None,
                       help="run each unit as a Ray task on a node with the cloudarcade_bench "
                            "resource; ADDRESS is a Ray address, or 'auto' for the local one")
    group.add_argument("--allow-shared-host", action="store_true",
                       help="let nodes on one host measure at once (their rows are flagged)")
    group.add_argument("--retries", type=int, default=2,
                       help="times a unit whose node died is tried again elsewhere")


def _config(args: argparse.Namespace) -> BenchConfig:
    from cloudarcade.bench.clients import check_client
    from cloudarcade.bench.scenario import BenchConfig, build_cells, expand_variants, parse_list
    from cloudarcade.cc import CONTROLLERS

    out = args.out or Path("results") / datetime.now().strftime("bench-%Y%m%d-%H%M%S")
    stacks = [parse_choice("stack", s, STACKS) for s in parse_list(args.stack)]
    ccs = [parse_choice("cc", c, sorted(CONTROLLERS)) for c in parse_list(args.cc)]
    try:
        clients = list(dict.fromkeys(check_client(c) for c in parse_list(args.client)))
    except ValueError as exc:
        raise OptionError(f"client: {exc}") from None
    if args.probes < 1:
        raise OptionError(f"probes: expected at least 1, got {args.probes}")
    return BenchConfig(
        out=out, profiles=parse_list(args.profiles),
        cells=build_cells(args.codec, args.resolution, args.fps, args.bitrate),
        stacks=expand_variants(stacks, ccs), ccs=ccs, ladder=args.ladder, fec=args.fec,
        clients=clients,
        game=_parse_game(args.game), probes=args.probes,
        probe_interval=args.probe_interval, probe_timeout=args.probe_timeout,
        warmup=args.warmup, seed=args.seed, metrics_port=args.metrics_port,
        extra_profiles=args.profiles_file,
    )


def _check_profiles(names: list[str], extra: Path | None) -> None:
    from cloudarcade.bench.scenario import NO_RELAY
    from cloudarcade.netsim import load_profiles

    known = load_profiles()
    if extra is not None:
        known.update(load_profiles(extra))
    for name in names:
        if name != NO_RELAY and name not in known:
            raise OptionError(
                f"unknown profile {name!r}; known profiles: {', '.join(known)} (or 'none')"
            )


def run(args: argparse.Namespace) -> int:
    console = _console(stderr=True)
    if args.bench_command == "compare":
        from cloudarcade.bench.compare import compare, print_changes

        try:
            print_changes(compare(args.a, args.b), _console(stderr=False))
        except (ValueError, OSError) as exc:
            print(f"cloudarcade bench compare: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.bench_command == "capacity":
        return bench_capacity.run(args, _console(stderr=False))

    from cloudarcade.bench import calibrate
    from cloudarcade.bench.runner import run_bench
    from cloudarcade.netsim import ProfileError

    try:
        config = _config(args)
        if args.retries < 0:
            raise OptionError(f"retries: expected 0 or more, got {args.retries}")
        if args.calibrate:
            config.profiles = calibrate.calibration_profiles()
            config.stacks = ["tuned"]
            config.out.mkdir(parents=True, exist_ok=True)
            config.extra_profiles = calibrate.write_profiles(config.out / "calibration.toml")
        _check_profiles(config.profiles, config.extra_profiles)
    except (OptionError, ProfileError) as exc:
        print(f"cloudarcade bench: {exc}", file=sys.stderr)
        return 2
    console.print(f"cloudarcade bench → {config.out}  ({len(config.profiles)} profiles × "
                  f"{len(config.cells)} cells × {', '.join(config.stacks)} × "
                  f"{', '.join(config.clients)} client, "
                  f"{config.probes} probes each)")
    failed_units = 0
    try:
        if args.cluster is not None:
            from cloudarcade.bench.cluster import ClusterError, ClusterRun

            cluster = ClusterRun(config, args.cluster, console=console,
                                 allow_shared_host=args.allow_shared_host, retries=args.retries)
            try:
                runs = cluster.run()
            except ClusterError as exc:
                print(f"cloudarcade bench: {exc}", file=sys.stderr)
                return 2
            failed_units = len(cluster.failed)
        else:
            runs = runtime.run(run_bench(config, console=console))
    except (asyncio.CancelledError, KeyboardInterrupt):
        console.print(f"stopped; partial results in {config.out}")
        return 130
    if args.calibrate:
        return _calibrate(config, runs, console)
    # A unit that failed on its node did not stop the run; the exit status says so.
    return 1 if failed_units else 0


def _calibrate(config: BenchConfig, runs: dict[str, RunResults], console: Console) -> int:
    """Check each client's tuned run; calibration.json in its directory, all in the report."""
    from cloudarcade.bench import calibrate
    from cloudarcade.bench.report import write_run_report
    from cloudarcade.bench.runner import run_key, stack_dir

    results: dict[str, dict[str, Any]] = {}
    for client in config.clients:
        run = runs.get(run_key(client, "tuned"))
        probes = run.probes if run is not None else []
        result = calibrate.write_calibration(stack_dir(config.out, "tuned", client), probes)
        results[client] = result
        for check in result["checks"]:
            console.print(
                f"{client}: +{check['delay_ms_each_way']} ms each way: median moved "
                f"{_fmt(check['measured_shift_ms'])} ms (expected {check['expected_shift_ms']}), "
                f"error {_fmt(check['error_ms'])} ms"
            )
        console.print(f"{client}: relay overhead (ideal − no relay): "
                      f"{_fmt(result['relay_overhead_ms'])} ms; calibration "
                      f"{'PASSED' if result['passed'] else 'FAILED'} "
                      f"(±{result['tolerance_ms']} ms)")
    if runs:
        # One client: its result as it is; several: by client.
        only = next(iter(results.values())) if len(results) == 1 else results
        write_run_report(config.out, runs, calibration=only)
    return 0 if all(r["passed"] for r in results.values()) else 1


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=140)  # logs and pipes: room for the tables
    return console


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"
