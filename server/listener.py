"""The HTTP listener: the aiohttp runner and site, with the server's connection limits.

aiohttp bounds neither the connections one address may hold nor the time a
new connection may take to send its headers, so 20,000 idle connections used
up the process's file descriptors. Each accepted connection here goes through
a :class:`GuardedProtocol` first, which

- refuses it (a short 503, then close) when its source address already holds
  ``max_connections_per_address`` connections, or the server ``max_connections``;
- closes it when its first request's headers have not all arrived within
  ``header_timeout`` (later requests on a kept-alive connection are bounded
  by aiohttp's ``keepalive_timeout``, which closes a connection whose next
  request has not been fully received);

and otherwise hands every event on to aiohttp's own protocol, unchanged.
:class:`ConnectionCounts` is the bookkeeping, without I/O.

``cloudarcade serve`` and the tests start the server through :func:`listen`,
so what the tests exercise is what runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Final, cast

from aiohttp import web

from cloudarcade.metrics import METRICS
from cloudarcade.metrics.definitions import CONNECTION_REFUSAL_REASONS
from cloudarcade.server.app import CONFIG
from cloudarcade.server.limits import Limits

logger = logging.getLogger(__name__)

# After a refused body (413, 408) aiohttp reads and discards what is still
# coming for this long, so that the client sees the answer rather than a reset;
# then it closes. Its default, 10 s, also held up shutdown by that much.
LINGERING_S: Final = 1.0
# Handlers still running at shutdown get this long to finish (answering an
# offer takes tens of ms; a body still trickling in is not worth waiting for).
SHUTDOWN_TIMEOUT_S: Final = 1.0
# The end of a request's headers.
_HEADERS_END: Final = b"\r\n\r\n"

PER_ADDRESS, TOTAL, HEADER_TIMEOUT = CONNECTION_REFUSAL_REASONS


class ConnectionCounts:
    """Open connections, in all and by source address."""

    def __init__(self) -> None:
        self.total = 0
        self.by_address: dict[str, int] = {}

    def admit(self, address: str, limits: Limits) -> str | None:
        """Count a new connection from ``address``; or the reason it is refused (not counted)."""
        if self.by_address.get(address, 0) >= limits.max_connections_per_address:
            return PER_ADDRESS
        if self.total >= limits.max_connections:
            return TOTAL
        self.by_address[address] = self.by_address.get(address, 0) + 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)
        self.total = max(self.total - 1, 0)


def _refusal(status: str, message: str, retry_after: int) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Retry-After: {retry_after}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class GuardedProtocol(asyncio.Protocol):
    """Admits a connection (or refuses it), then forwards everything to aiohttp's protocol."""

    def __init__(self, make_inner: Callable[[], asyncio.Protocol], counts: ConnectionCounts,
                 limits: Callable[[], Limits]) -> None:
        self._make_inner = make_inner
        self._counts = counts
        self._limits = limits
        self._inner: asyncio.Protocol | None = None
        self._address = ""
        self._transport: asyncio.Transport | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, for a header end split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports are not asyncio.Transport subclasses (an assert
        # here failed every connection under uvloop, the CLI's default loop).
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        limits = self._limits()
        refused = self._counts.admit(self._address, limits)
        if refused is not None:
            METRICS.connections_refused.labels(refused).inc()
            if refused == PER_ADDRESS:
                message = (f"too many connections from {self._address}: at most "
                           f"{limits.max_connections_per_address} at once")
            else:
                message = f"too many connections: at most {limits.max_connections} at once"
            logger.debug("refusing a connection from %s: %s", self._address, message)
            transport.write(_refusal("503 Service Unavailable", message, 5))
            transport.close()
            return
        METRICS.connections_open.inc()
        self._transport = transport
        if limits.header_timeout > 0:
            self._header_timer = asyncio.get_running_loop().call_later(
                limits.header_timeout, self._headers_too_slow)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        METRICS.connections_refused.labels(HEADER_TIMEOUT).inc()
        logger.debug("closing a connection from %s: no complete headers in time", self._address)
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is not None:
            if _HEADERS_END in self._tail + data[:len(_HEADERS_END) - 1] or _HEADERS_END in data:
                self._header_timer.cancel()
                self._header_timer = None
            else:
                self._tail = (self._tail + data)[-(len(_HEADERS_END) - 1):]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._inner is None:
            return
        self._counts.release(self._address)
        METRICS.connections_open.dec()
        self._transport = None
        inner, self._inner = self._inner, None
        inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through :class:`GuardedProtocol`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 limits: Callable[[], Limits], *, backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits
        self.counts = ConnectionCounts()

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: GuardedProtocol(server, self.counts, self._limits),
            self._host, self._port, backlog=self._backlog,
        )


async def listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` (from ``create_app``) on ``host:port`` (0: a free port).

    Stop it with ``runner.cleanup()``. The app's ``ServerConfig.limits`` are read
    for every new connection, so a change applies to the next one.
    """
    config = app[CONFIG]
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, lingering_time=LINGERING_S,
                           keepalive_timeout=config.limits.keepalive_timeout)
    await runner.setup()
    site = GuardedSite(runner, host, port, lambda: config.limits)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
