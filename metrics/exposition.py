"""``GET /metrics`` for aiohttp, in the Prometheus text format or OpenMetrics.

The format follows the request's Accept header (prometheus_client's
``choose_encoder``): OpenMetrics when it asks for
``application/openmetrics-text``, the Prometheus text format 0.0.4 otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .definitions import REGISTRY

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS_PATH = "/metrics"


def metrics_handler(registry: CollectorRegistry = REGISTRY) -> Handler:
    """An aiohttp handler that serves a scrape of ``registry``."""

    async def handle_metrics(request: web.Request) -> web.StreamResponse:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        # A bounded registry encodes in well under a millisecond: not worth a thread.
        body = encoder(registry)
        response = web.Response(body=body)
        # content_type carries parameters (version, charset): set the raw header.
        response.headers["Content-Type"] = content_type
        return response

    return handle_metrics


def add_metrics_route(
    app: web.Application, registry: CollectorRegistry = REGISTRY, path: str = METRICS_PATH
) -> None:
    """Serve ``registry`` at ``path`` on an existing app (the server's own port)."""
    app.router.add_get(path, metrics_handler(registry))


async def start_metrics_server(
    host: str = "127.0.0.1", port: int = 9100, registry: CollectorRegistry = REGISTRY
) -> web.AppRunner:
    """Serve ``GET /metrics`` on its own ``host:port``; ``port=0`` picks a free one.

    The caller stops it with ``await runner.cleanup()``; :func:`bound_port`
    tells the port actually bound.
    """
    app = web.Application()
    add_metrics_route(app, registry)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("metrics on http://%s:%d%s", host, bound_port(runner), METRICS_PATH)
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port of the first address ``runner`` listens on."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("runner is not listening on a TCP address")
