"""``cloudarcade games``: the demo games a session can run."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from cloudarcade.server.games import available_games, game_class


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("games", help="list the demo games")


def run(args: argparse.Namespace) -> int:
    table = Table(title="games", header_style="bold")
    for column in ("game", "players", "what it is"):
        table.add_column(column)
    for name in available_games():
        cls = game_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        table.add_row(name, str(cls.max_players), doc)
    Console().print(table)
    return 0
