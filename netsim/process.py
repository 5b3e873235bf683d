"""The parent's side of the relay process: start it, open relays, read stats.

    async with RelayProcess() as process:
        relay = await process.open(get_profile("5g-sa"), forward=("127.0.0.1", 5000))
        relay.address                  # ("127.0.0.1", R): point the client here
        await relay.stats()            # RelayStats(uplink=..., downlink=..., mappings=...)
        await relay.close()

One ``RelayProcess`` serves any number of relays (``open`` each), in a
process of its own (``netsim.engine``), so that no relay shares an interpreter,
a GIL or a scheduler slot with the parent's threads. ``open_relay`` is the
shorthand for one relay in a process of its own. Events the relay process
sends (``refused``, ``error``) are logged and passed to ``on_event``; if the
process dies, pending and later requests raise ``RelayProcessError`` and
``on_exit`` is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import control
from .control import Message
from .eventlog import log_paths
from .mapping import IDLE_TIMEOUT, MAX_MAPPINGS
from .profile import Profile
from .stats import RelayStats

logger = logging.getLogger(__name__)

Address = tuple[str, int]
EventHandler = Callable[[Message], None]


class RelayProcessError(RuntimeError):
    """The relay process refused a request, or is not running; the text says which."""


class RelayProcess:
    """A relay process and its control channel (asyncio)."""

    def __init__(
        self,
        *,
        realtime: bool = False,
        verbose: bool = False,
        on_event: EventHandler | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.realtime = realtime
        self.verbose = verbose
        self.on_event = on_event
        #: Called once if the relay process goes away without ``close()``.
        self.on_exit = on_exit
        self._closing = False
        self._gone = False  # the channel closed
        self.pid: int | None = None
        self.nofile: tuple[int, int] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[Message] | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return (self._process is not None and self._process.returncode is None
                and not self._gone)

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait for its ``ready``."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "cloudarcade.netsim.engine", "--control-fd",
               str(theirs.fileno())]
        if self.realtime:
            cmd.append("--realtime")
        if self.verbose:
            cmd.append("-v")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *cmd, pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL
            )
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._ready = asyncio.get_running_loop().create_future()
        self._reading = asyncio.ensure_future(self._read(reader))
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except (TimeoutError, RelayProcessError):
            await self.close()
            raise RelayProcessError(f"the relay process did not start within {timeout} s") from None
        self.pid = int(ready["pid"])
        soft, hard = ready["nofile"]
        self.nofile = (int(soft), int(hard))
        logger.info("netsim relay process %d started (descriptor limit %d)", self.pid, soft)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        lines = control.LineReader()
        try:
            while data := await reader.read(1 << 16):
                for message in lines.feed(data):
                    self._dispatch(message)
        except (ConnectionError, control.ControlError) as exc:
            logger.error("netsim relay process channel: %s", exc)
        finally:
            self._gone = True
            gone = RelayProcessError("the relay process has exited")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(gone)
            self._pending.clear()
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(gone)
            if not self._closing:
                logger.error("the netsim relay process %s has exited unasked", self.pid)
                if self.on_exit is not None:
                    self.on_exit()

    def _dispatch(self, message: Message) -> None:
        event = message.get("event")
        if event == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
            return
        if event is not None:
            if event == "error":
                logger.error("netsim relay process: %s", message.get("message"))
            else:
                logger.info("netsim relay process event: %s", message)
            if self.on_event is not None:
                self.on_event(message)
            return
        future = self._pending.pop(message.get("id", -1), None)
        if future is None or future.done():
            return
        if "error" in message:
            future.set_exception(RelayProcessError(str(message["error"])))
        else:
            future.set_result(message.get("ok"))

    async def request(self, op: str, **fields: Any) -> Any:
        """Send one request and wait for its answer (RelayProcessError on refusal)."""
        if self._writer is None or not self.running:
            raise RelayProcessError(f"the relay process is not running (asked: {op})")
        request = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        try:
            self._writer.write(control.encode({"id": request, "op": op, **fields}))
            await self._writer.drain()
        except ConnectionError:
            self._pending.pop(request, None)
            raise RelayProcessError(f"the relay process has exited (asked: {op})") from None
        return await future

    async def open(
        self,
        profile: Profile,
        forward: Address,
        *,
        listen: Address = ("127.0.0.1", 0),
        event_log: Path | None = None,
        allowed: Iterable[Address] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_mappings: int = MAX_MAPPINGS,
        window: int = 4096,
    ) -> RemoteRelay:
        """A new relay from ``listen`` (port 0: any free port) to ``forward``.

        ``allowed``: the only client addresses it takes packets from (None:
        any); mappings close after ``idle_timeout`` s idle, and at most
        ``max_mappings`` are open at once. Beyond either, packets are dropped
        and counted (reasons ``source`` and ``mappings``).
        """
        result = await self.request(
            "open",
            profile=control.pack_profile(profile),
            listen=list(listen),
            forward=list(forward),
            # The relay process runs in our working directory: relative paths hold.
            event_log=None if event_log is None else str(event_log),
            allowed=None if allowed is None else [list(a) for a in allowed],
            idle_timeout=idle_timeout,
            max_mappings=max_mappings,
            window=window,
        )
        host, port = result["address"]
        return RemoteRelay(self, int(result["relay"]), (host, int(port)), forward, event_log)

    async def info(self) -> dict[str, Any]:
        """The process's own figures: pid, open_fds, nofile, relays, mappings."""
        result: dict[str, Any] = await self.request("process")
        return result

    async def close(self) -> None:
        """Close the channel (the process closes its relays and exits) and wait for it."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None
        process = self._process
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                logger.warning("netsim relay process %s did not exit; killing it", process.pid)
                process.kill()
                await process.wait()
        if self._reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
            self._reading = None

    async def __aenter__(self) -> RelayProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class RemoteRelay:
    """One relay in a relay process, seen from the parent."""

    def __init__(
        self,
        process: RelayProcess,
        relay_id: int,
        address: Address,
        forward: Address,
        event_log: Path | None,
        *,
        owns_process: bool = False,
    ) -> None:
        self.process = process
        self.id = relay_id
        self.address = address
        self.forward = forward
        self.event_log_paths = log_paths(event_log) if event_log is not None else {}
        self.owns_process = owns_process
        self._closed = False

    async def upstream_address(self, client: Address) -> Address:
        """The address the forward side sees ``client`` as, opening the mapping now."""
        result = await self.process.request("upstream", relay=self.id, client=list(client))
        host, port = result["address"]
        return host, int(port)

    async def set_forward(self, forward: Address) -> None:
        await self.process.request("forward", relay=self.id, address=list(forward))
        self.forward = forward

    async def stats(self) -> RelayStats:
        """Counters and recent percentiles for both directions, and the NAT table."""
        return RelayStats.from_json(await self.process.request("stats", relay=self.id))

    async def close(self) -> None:
        """Close the relay (and its process, if it has one of its own); idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RelayProcessError):
            await self.process.request("close", relay=self.id)
        if self.owns_process:
            await self.process.close()

    async def __aenter__(self) -> RemoteRelay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_relay(
    profile: Profile,
    forward: Address,
    *,
    listen: Address = ("127.0.0.1", 0),
    event_log: Path | None = None,
    realtime: bool = False,
    idle_timeout: float = IDLE_TIMEOUT,
    max_mappings: int = MAX_MAPPINGS,
    window: int = 4096,
) -> RemoteRelay:
    """One relay in a relay process of its own; closing the relay ends the process.

    ``realtime=True`` runs the process in SCHED_FIFO (needs CAP_SYS_NICE).
    """
    process = RelayProcess(realtime=realtime)
    await process.start()
    try:
        relay = await process.open(profile, forward, listen=listen, event_log=event_log,
                                   idle_timeout=idle_timeout, max_mappings=max_mappings,
                                   window=window)
    except BaseException:
        await process.close()
        raise
    relay.owns_process = True
    return relay
