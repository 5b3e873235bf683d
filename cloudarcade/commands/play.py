"""``cloudarcade play``: connect a thin client to a server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cloudarcade import runtime
from cloudarcade.client.headless import ClientError, ClientOptions, play_headless
from cloudarcade.commands.serve import add_session_arguments


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("play", help="connect a client to a server")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    parser.add_argument("--headless", action="store_true",
                        help="no window: receive, decode, send scripted inputs and measure")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (headless)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--input-interval", type=float, default=0.25,
                        help="mean seconds between scripted key presses (headless)")
    add_session_arguments(parser, defaults=False)


def run(args: argparse.Namespace) -> int:
    options = ClientOptions(
        url=args.url, game=args.game, resolution=args.resolution, fps=args.fps,
        codec=args.codec, bitrate=args.bitrate, stack=args.stack or "tuned", cc=args.cc,
        ladder=args.ladder, fec=args.fec,
        seed=args.seed,
        input_interval=args.input_interval,
    )
    if not args.headless:
        from cloudarcade.client.window import play_window

        result: int = play_window(options)
        return result
    try:
        summary = runtime.run(play_headless(options, args.duration))
    except ClientError as exc:
        print(f"cloudarcade play: {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        return 130
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        lat = summary["frame_latency_ms"]
        print(f"{summary['frames_decoded']} frames, {summary['fps']} fps, frame latency p50 "
              f"{lat['p50']} / p99 {lat['p99']} ms, inputs {summary['inputs_reflected']}"
              f"/{summary['inputs_sent']} reflected")
    return 0
