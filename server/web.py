"""The browser client's files: ``GET /`` is the page, ``/client/...`` its modules and styles.

The files live in ``client/web`` (plain HTML, ES modules and CSS, no build step)
and are served as they are. aiohttp's static route refuses paths that leave the
directory (``..``, symlinks out of it), and the responses carry no CORS headers,
so other origins cannot read them from a script.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from aiohttp import web

import cloudarcade.client

logger = logging.getLogger(__name__)

WEB_DIR: Final = Path(cloudarcade.client.__file__).resolve().parent / "web"
STATIC_PREFIX: Final = "/client"


async def index(request: web.Request) -> web.FileResponse:
    """The page; ``?join=TOKEN&role=...`` in the URL is read by the page's script."""
    return web.FileResponse(WEB_DIR / "index.html")


async def _web_headers(request: web.Request, response: web.StreamResponse) -> None:
    # The page and its modules change with the server: revalidate rather than run stale modules.
    if request.path == "/" or request.path.startswith(STATIC_PREFIX + "/"):
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")


def add_web_routes(app: web.Application) -> None:
    """Serve the browser client from ``app``: ``/`` and ``/client/*``."""
    if not (WEB_DIR / "index.html").is_file():
        raise FileNotFoundError(f"{WEB_DIR / 'index.html'}: browser client files are missing")
    app.router.add_get("/", index)
    app.router.add_static(STATIC_PREFIX, WEB_DIR, follow_symlinks=False, show_index=False)
    app.on_response_prepare.append(_web_headers)
    logger.debug("serving the browser client from %s", WEB_DIR)
