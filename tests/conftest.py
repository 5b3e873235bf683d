"""Shared fixtures: a real server on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from cloudarcade.metrics import bound_port
from cloudarcade.server.app import ServerConfig, create_app
from cloudarcade.server.listener import listen
from cloudarcade.server.options import SessionOptions


class RunningServer:
    def __init__(self, app: web.Application, runner: web.AppRunner, url: str) -> None:
        self.app = app
        self.runner = runner
        self.url = url


async def start_server(config: ServerConfig, port: int = 0) -> RunningServer:
    """``config``'s app on ``port`` (0: a free one); stop it with ``runner.cleanup()``."""
    app = create_app(config)
    runner = await listen(app, config.host, port)
    return RunningServer(app, runner, f"http://{config.host}:{bound_port(runner)}")


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """A server with small, fast defaults for tests."""
    config = ServerConfig(
        defaults=SessionOptions(game="probe", width=640, height=360, fps=30, bitrate=1_000_000)
    )
    running = await start_server(config)
    yield running
    await running.runner.cleanup()


async def settle(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``predicate`` holds within ``timeout`` seconds (polled every 20 ms)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()
