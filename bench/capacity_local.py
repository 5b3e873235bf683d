"""The clients of a capacity step as local processes (``capacity_client``), one each.

Each speaks JSON lines on stdout (``ready``, ``measuring``, ``result`` or
``error``) and starts measuring when it reads ``go`` on stdin, so that every
session's window is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

from cloudarcade.bench.capacity import CapacityConfig

logger = logging.getLogger(__name__)


class ClientProcessError(RuntimeError):
    pass


class _Client:
    def __init__(self, process: asyncio.subprocess.Process, index: int) -> None:
        self.process = process
        self.index = index
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                logger.debug("client %d: %s", self.index, raw.decode(errors="replace").rstrip())
                continue
            await self.events.put(event)
        await self.events.put({"event": "error", "error": "exited"})

    async def expect(self, name: str, timeout: float) -> dict[str, Any]:
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event.get("event") != name:
            raise ClientProcessError(f"client {self.index}: expected {name!r}, got {event}")
        return event


class LocalClients:
    """``n`` client processes on this machine."""

    where = "local processes"

    def __init__(self, config: CapacityConfig, connect_timeout: float = 90.0) -> None:
        self.config = config
        self.connect_timeout = connect_timeout
        self._clients: list[_Client] = []

    async def start(self, n: int, url: str) -> None:
        for index in range(n):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cloudarcade.bench.capacity_client",
                *self.config.client_args(url, seed=index + 1),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )
            self._clients.append(_Client(process, index))
        await self._all("ready", self.connect_timeout)

    async def go(self) -> None:
        for client in self._clients:
            assert client.process.stdin is not None
            client.process.stdin.write(b"go\n")
            await client.process.stdin.drain()
        await self._all("measuring", self.config.warmup + 30)

    async def results(self) -> list[dict[str, Any]]:
        return await self._all("result", self.config.duration + 30)

    async def _all(self, name: str, timeout: float) -> list[dict[str, Any]]:
        """Every client's next event, which must be ``name``; a client that says
        anything else (or nothing in time) has failed and is dropped."""
        events = await asyncio.gather(*(c.expect(name, timeout) for c in self._clients),
                                      return_exceptions=True)
        kept, out = [], []
        for client, event in zip(self._clients, events, strict=True):
            if isinstance(event, BaseException):
                logger.warning("client %d failed: %s", client.index, event or type(event))
                await _stop(client)
            else:
                kept.append(client)
                out.append(event)
        self._clients = kept
        return out

    async def close(self) -> None:
        clients, self._clients = self._clients, []
        await asyncio.gather(*(_stop(c) for c in clients))


async def _stop(client: _Client) -> None:
    """SIGTERM (the client closes its connection), SIGKILL after 10 s."""
    process = client.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
    client.reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await client.reader
