"""``cloudarcade serve``: stream games to any WebRTC client that POSTs an offer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from cloudarcade import runtime
from cloudarcade.metrics import REGISTRY, bound_port, start_metrics_server
from cloudarcade.netsim import ProfileError, get_profile, load_profiles
from cloudarcade.runtime import raise_fd_limit
from cloudarcade.server.app import ServerConfig, create_app
from cloudarcade.server.limits import Limits
from cloudarcade.server.listener import listen
from cloudarcade.server.options import FEC_MODES, STACKS, OptionError, SessionOptions

logger = logging.getLogger(__name__)


def add_session_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The session options shared by ``serve`` (server defaults) and ``play`` (requests)."""
    d = SessionOptions() if defaults else None
    parser.add_argument("--game", default=d.game if d else None,
                        help="probe, pong, swarm or terrain")
    parser.add_argument("--resolution", default=d.resolution if d else None, help="WIDTHxHEIGHT")
    parser.add_argument("--fps", default=d.fps if d else None, help="frames per second")
    parser.add_argument("--codec", default=d.codec if d else None,
                        help="h264 (NVENC if it opens, else libx264), libx264, h264_nvenc, vp8")
    parser.add_argument("--bitrate", default="8M" if d else None, help="bits/s, e.g. 8M or 800k")
    parser.add_argument("--stack", default=d.stack if d else None, choices=STACKS,
                        help="tuned: our encoder and pacing; stock: aiortc's own (baseline)")
    parser.add_argument("--cc", default=d.cc if d else None,
                        help="congestion controller of the tuned stack: gcc (adapts the "
                             "bitrate to the link) or none (fixed bitrate)")
    parser.add_argument("--ladder", default=("on" if d.ladder else "off") if d else None,
                        choices=("on", "off"),
                        help="step the resolution and frame rate down when the controller's "
                             "target is too low for them (with --cc gcc; default on)")
    parser.add_argument("--fec", default=d.fec if d else None, choices=FEC_MODES,
                        help="FEC parity for the video of clients that ask for it (the Python "
                             "client): auto sends it while the link loses packets, on always, "
                             "off never (default auto; docs/fec.md)")
    parser.add_argument("--seed", default=d.seed if d else None, help="game seed")


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT like 127.0.0.1:9100, got {text!r}")
    return host, int(port)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the streaming server")
    parser.add_argument("--host", default="127.0.0.1",
                        help="bind address for HTTP and ICE (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (0: pick a free one)")
    parser.add_argument("--max-sessions", type=int, default=8)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    parser.add_argument("--profile", default=None,
                        help="netsim profile on every session's media path: a name from "
                             "`cloudarcade profiles` or FILE.toml[:NAME] (default: no relay)")
    parser.add_argument("--profiles", type=Path, default=None, metavar="FILE.toml",
                        help="more profiles that clients may ask for by name")
    parser.add_argument("--metrics", type=_address, default=None, metavar="HOST:PORT",
                        help="serve /metrics on its own address instead of the public port")
    parser.add_argument("--token", default=None,
                        help="access token required by /offer and share links "
                             "(default: $CLOUDARCADE_TOKEN; none: open to who can reach the port)")
    parser.add_argument("--ice-timeout", type=float, default=Limits.ice_timeout, metavar="S",
                        help="close a viewer not connected S seconds after its answer (0: off)")
    parser.add_argument("--liveness-timeout", type=float, default=Limits.liveness_timeout,
                        metavar="S", help="close a connected viewer that sent no RTCP for "
                                          "S seconds, e.g. a killed client (0: off)")
    parser.add_argument("--idle-timeout", type=float, default=Limits.idle_timeout, metavar="S",
                        help="close a session with no player input for S seconds (0: off)")
    parser.add_argument("--header-timeout", type=float, default=Limits.header_timeout,
                        metavar="S", help="close a connection that has not sent its request "
                                          "headers S seconds after connecting (0: off)")
    parser.add_argument("--max-connections-per-address", type=int,
                        default=Limits.max_connections_per_address, metavar="N",
                        help="HTTP connections one source address may hold at once")
    parser.add_argument("--sample-dir", type=Path, default=None,
                        help="save every Nth source frame's luma here (for PSNR/SSIM)")
    parser.add_argument("--sample-every", type=int, default=60)
    add_session_arguments(parser, defaults=True)


def session_defaults(args: argparse.Namespace) -> SessionOptions:
    return SessionOptions().updated({
        "game": args.game, "resolution": args.resolution, "fps": args.fps, "codec": args.codec,
        "bitrate": args.bitrate, "stack": args.stack, "cc": args.cc, "ladder": args.ladder,
        "fec": args.fec, "seed": args.seed,
    })


def build_config(args: argparse.Namespace) -> ServerConfig:
    """The server configuration from the flags; OptionError/ProfileError on bad input."""
    defaults = session_defaults(args)
    profiles = load_profiles()
    if args.profiles is not None:
        profiles.update(load_profiles(args.profiles))
    if args.profile is not None:
        profile = profiles.get(args.profile) or get_profile(args.profile)
        profiles[profile.name] = profile
        defaults = replace(defaults, profile=profile.name)
    token = args.token if args.token is not None else os.environ.get("CLOUDARCADE_TOKEN")
    try:
        limits = Limits(ice_timeout=args.ice_timeout, idle_timeout=args.idle_timeout,
                        liveness_timeout=args.liveness_timeout,
                        header_timeout=args.header_timeout,
                        max_connections_per_address=args.max_connections_per_address)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    return ServerConfig(
        host=args.host, defaults=defaults, max_sessions=args.max_sessions, profiles=profiles,
        metrics_on_public_port=args.metrics is None,
        sample_dir=args.sample_dir, sample_every=args.sample_every,
        token=token or None, limits=limits,
    )


async def serve(config: ServerConfig, port: int, metrics: tuple[str, int] | None) -> None:
    soft, _ = raise_fd_limit()
    # Each connection holds a descriptor, and so does each viewer's ICE socket.
    if soft < config.limits.max_connections + 256:
        logger.warning("the open-file limit (%d) is low for %d connections plus sessions",
                       soft, config.limits.max_connections)
    app = create_app(config)
    runner = await listen(app, config.host, port)
    metrics_runner: web.AppRunner | None = None
    try:
        actual = bound_port(runner)
        if metrics is not None:
            metrics_runner = await start_metrics_server(metrics[0], metrics[1], REGISTRY)
            print(f"metrics on http://{metrics[0]}:{bound_port(metrics_runner)}/metrics",
                  file=sys.stderr, flush=True)
        # The bench reads this line to find the port when --port is 0.
        print(f"cloudarcade serving {config.defaults.game} on http://{config.host}:{actual}",
              file=sys.stderr, flush=True)
        await runtime.wait_forever()
    except asyncio.CancelledError:
        logger.info("stopping: closing sessions")
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except (OptionError, ProfileError) as exc:
        print(f"cloudarcade serve: {exc}", file=sys.stderr)
        return 2
    if not (args.host == "localhost" or args.host.startswith("127.")):
        logger.warning("binding %s: the server is reachable from other hosts%s", args.host,
                       "" if config.token else "; anyone who reaches it can start sessions "
                       "(set --token or CLOUDARCADE_TOKEN)")
    try:
        runtime.run(serve(config, args.port, args.metrics), use_uvloop=not args.no_uvloop)
    except asyncio.CancelledError:
        pass
    except OSError as exc:
        print(f"cloudarcade serve: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0
