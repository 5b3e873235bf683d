"""The ``cloudarcade`` command: a thin layer that parses arguments and hands off.

Each subcommand lives in ``cloudarcade/commands/<name>.py`` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from cloudarcade import __version__

COMMANDS = ("serve", "play", "bench", "netsim", "profiles", "games")


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"cloudarcade.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"cloudarcade.commands.{name}":
            return None
        raise


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="cloudarcade",
        description="Cloud-gaming streaming testbed: stream, impair, measure.",
    )
    parser.add_argument("--version", action="version", version=f"cloudarcade {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name in COMMANDS:
        module = _load(name)
        if module is not None:
            module.add_parser(sub)
            modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    result: int = modules[args.command].run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
