"""The HTTP listener: the aiohttp runner and site with the server's connection limits.

``cloudarcade serve`` and the tests start the server through :func:`listen`,
so that what the tests exercise is what runs.
"""

from __future__ import annotations

import logging

from aiohttp import web

logger = logging.getLogger(__name__)

# After a refused body (413, 408) aiohttp reads and discards what is still
# coming for this long, so that the client sees the answer rather than a reset;
# then it closes. Its default, 10 s, also held up shutdown by that much.
LINGERING_S = 1.0
# Handlers still running at shutdown get this long to finish.
SHUTDOWN_TIMEOUT_S = 2.0


async def listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (0: a free port); stop it with ``runner.cleanup()``."""
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, lingering_time=LINGERING_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
