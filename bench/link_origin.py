"""Where the relay's trace started: asked of the server while the session is live.

The relay starts a trace at the first packet it carries. The bench used to take
that to be when the client started connecting, which was 0.33 s early with the
headless client and 0.9 s early with Chromium (it loads its page first): link
times, ``drain_s`` and ``recover_s`` (:mod:`cloudarcade.bench.linkstats`) were
off by that much. The server hands out what the session's relay counted
(``GET /sessions/{id}/link``), origin included, on the host's monotonic clock,
which the bench's ``time.monotonic()`` shares.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


def downlink_origin(link: Mapping[str, Any]) -> float | None:
    """The first downlink origin among the viewers of a ``/sessions/{id}/link`` answer."""
    viewers = link.get("viewers")
    if not isinstance(viewers, Mapping):
        return None
    for stats in viewers.values():
        if not isinstance(stats, Mapping):
            continue
        origin = stats.get("downlink", {}).get("origin")
        if isinstance(origin, int | float):
            return float(origin)
    return None


async def relay_origin(url: str, session: int | None) -> float | None:
    """The downlink trace's origin for ``session`` on the server at ``url``; None
    when there is none to read (no profile, no trace in it, the session gone) or
    the server did not answer, which the log says."""
    if session is None:
        return None
    address = f"{url.rstrip('/')}/sessions/{session}/link"
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http, http.get(address) as response:
            if response.status != 200:
                logger.warning("no link origin from %s: HTTP %d %s", address, response.status,
                               (await response.text())[:200])
                return None
            return downlink_origin(await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        logger.warning("no link origin from %s: %s", address, exc)
        return None
