"""``cloudarcade serve``: stream games to any WebRTC client that POSTs an offer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace

from aiohttp import web

from cloudarcade import runtime
from cloudarcade.netsim import ProfileError, get_profile, load_profiles
from cloudarcade.server.app import ServerConfig, create_app
from cloudarcade.server.options import OptionError, SessionOptions

logger = logging.getLogger(__name__)


def add_session_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The session options shared by ``serve`` (server defaults) and ``play`` (requests)."""
    d = SessionOptions() if defaults else None
    parser.add_argument("--game", default=d.game if d else None, help="probe, pong or swarm")
    parser.add_argument("--resolution", default=d.resolution if d else None, help="WIDTHxHEIGHT")
    parser.add_argument("--fps", default=d.fps if d else None, help="frames per second")
    parser.add_argument("--codec", default=d.codec if d else None,
                        help="h264 (NVENC if it opens, else libx264), libx264, h264_nvenc, vp8")
    parser.add_argument("--bitrate", default="8M" if d else None, help="bits/s, e.g. 8M or 800k")
    parser.add_argument("--stack", default=d.stack if d else None, choices=("tuned", "stock"),
                        help="tuned: our encoder and pacing; stock: aiortc's own (baseline)")
    parser.add_argument("--seed", default=d.seed if d else None, help="game seed")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the streaming server")
    parser.add_argument("--host", default="127.0.0.1",
                        help="bind address for HTTP and ICE (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-sessions", type=int, default=8)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    parser.add_argument("--profile", default=None,
                        help="netsim profile on every session's media path: a name from "
                             "`cloudarcade profiles` or FILE.toml[:NAME] (default: no relay)")
    add_session_arguments(parser, defaults=True)


def session_defaults(args: argparse.Namespace) -> SessionOptions:
    return SessionOptions().updated({
        "game": args.game, "resolution": args.resolution, "fps": args.fps, "codec": args.codec,
        "bitrate": args.bitrate, "stack": args.stack, "seed": args.seed,
    })


async def serve(config: ServerConfig, port: int) -> None:
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, config.host, port)
    try:
        await site.start()
        print(f"cloudarcade serving {config.defaults.game} on http://{config.host}:{port}",
              file=sys.stderr, flush=True)
        await runtime.wait_forever()
    except asyncio.CancelledError:
        logger.info("stopping")
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    try:
        defaults = session_defaults(args)
    except OptionError as exc:
        print(f"cloudarcade serve: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost") and not args.host.startswith("127."):
        logger.warning("binding %s: the server is reachable from other hosts", args.host)
    profiles = load_profiles()
    if args.profile is not None:
        try:
            profile = get_profile(args.profile)
        except ProfileError as exc:
            print(f"cloudarcade serve: {exc}", file=sys.stderr)
            return 2
        profiles[profile.name] = profile
        defaults = replace(defaults, profile=profile.name)
    config = ServerConfig(host=args.host, defaults=defaults, max_sessions=args.max_sessions,
                          profiles=profiles)
    try:
        runtime.run(serve(config, args.port), use_uvloop=not args.no_uvloop)
    except asyncio.CancelledError:
        pass
    except OSError as exc:
        print(f"cloudarcade serve: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0
