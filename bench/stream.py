"""Stream benchmark: delivered fps and frame latency, ours beside stock aiortc.

    python -m cloudarcade.bench.stream --games pong,swarm --duration 20

For each game and stack it starts ``cloudarcade serve`` as a subprocess,
connects one headless client for ``--duration`` seconds (no network profile)
and prints delivered fps and frame latency (server render end → client decode
end, one clock) p50/p95/p99, side by side, with our/stock ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cloudarcade import runtime
from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.client.headless import ClientOptions, play_headless


async def measure(game: str, stack: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    server = ServerProcess(args=[], log_path=log_dir / f"server-{game}-{stack}.log")
    url = await server.start()
    try:
        options = ClientOptions(
            url=url, game=game, resolution=args.resolution, fps=args.fps, codec=args.codec,
            bitrate=args.bitrate, stack=stack, input_interval=0.5,
        )
        summary = await play_headless(options, args.duration)
    finally:
        await server.stop()
    summary["game"] = game
    return summary


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for game in args.games.split(","):
            for stack in args.stacks.split(","):
                print(f"measuring {game} {stack} for {args.duration:.0f} s ...", file=sys.stderr)
                results.append(await measure(game, stack, args, Path(tmp)))
    return results


def render(results: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for name in ("game", "stack", "frames", "fps", "p50 ms", "p95 ms", "p99 ms",
                 "p50 / stock", "p99 / stock"):
        table.add_column(name, justify="left" if name in ("game", "stack") else "right")
    stock = {r["game"]: r for r in results if r["stack"] == "stock"}
    for r in results:
        lat = r["frame_latency_ms"]
        base = stock.get(r["game"])
        ratios = ["-", "-"]
        if base is not None and r["stack"] != "stock":
            for i, key in enumerate(("p50", "p99")):
                if lat[key] and base["frame_latency_ms"][key]:
                    ratios[i] = f"{lat[key] / base['frame_latency_ms'][key]:.2f}"
        table.add_row(r["game"], r["stack"], str(r["frames_decoded"]), f"{r['fps']:.1f}",
                      *(f"{lat[k]:.1f}" if lat[k] is not None else "-"
                        for k in ("p50", "p95", "p99")), *ratios)
    return table


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.stream",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--games", default="pong,swarm")
    parser.add_argument("--stacks", default="tuned,stock")
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--bitrate", default="8M")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print the raw summaries as JSON")
    args = parser.parse_args(argv)
    results = runtime.run(main(args))
    if args.json:
        print(json.dumps(results, indent=2))
    title = f"{args.codec} {args.resolution}@{args.fps} {args.bitrate}: frame render → decoded"
    Console(width=120).print(render(results, title))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
