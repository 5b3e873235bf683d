"""The server under test, in its own process.

The bench runs the server as a subprocess rather than in-process: on a
2-core machine the server's render/encode threads and the client's receive
path would otherwise share one interpreter and its GIL, and the client's
timing would include waits for the server's Python code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

_READY = re.compile(r"cloudarcade serving \S+ on (http://\S+)")


class ServerProcessError(RuntimeError):
    pass


class ServerProcess:
    """``cloudarcade serve`` on 127.0.0.1 with a free port; ``url`` once started."""

    def __init__(self, *, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.url: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._process is None else self._process.pid

    async def start(self, timeout: float = 30.0) -> str:
        cmd = [sys.executable, "-m", "cloudarcade.cli", "serve", "--host", "127.0.0.1",
               "--port", "0", *self.args]
        logger.info("starting server: %s", " ".join(cmd))
        self._process = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.ensure_future(self._read_log(ready))
        try:
            self.url = await asyncio.wait_for(ready, timeout)
        except (TimeoutError, ServerProcessError):
            await self.stop()
            log = self.log_path
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerProcessError(f"the server did not start; its log ends:\n{tail}") from None
        return self.url

    async def _read_log(self, ready: asyncio.Future[str]) -> None:
        assert self._process is not None and self._process.stderr is not None
        with self.log_path.open("w") as log:
            async for raw in self._process.stderr:
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                match = _READY.search(line)
                if match and not ready.done():
                    ready.set_result(match[1])
        if not ready.done():
            ready.set_exception(ServerProcessError("server exited"))

    async def stop(self) -> None:
        """SIGTERM (the server closes its sessions), then SIGKILL after 10 s."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                logger.warning("server did not stop on SIGTERM; killing it")
                process.kill()
                await process.wait()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError, ServerProcessError):
                await self._pump
        self._process = None
