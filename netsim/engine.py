"""The relay process: one loop serving any number of relays, driven over a
control channel by its parent.

    python -m cloudarcade.netsim.engine --control-fd N [--realtime] [-v]

Started by ``netsim.process.RelayProcess``; it never shares an interpreter
with the parent's render or encode threads. It is single-threaded: it waits in
``Waiter`` (epoll, microsecond timeouts) until ``SPIN`` before the earliest
departure of any relay, spins to it and sends. Every quarter second it
re-measures the realtime-to-monotonic offset (``rxstamp``) and expires idle
mappings. It raises its soft descriptor limit to the hard limit at start, and
exits when the control channel closes (or its parent dies).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudarcade.runtime import raise_fd_limit

from . import control
from .control import ControlError, Message, address
from .mapping import IDLE_TIMEOUT, MAX_MAPPINGS
from .pacing import SPIN, Waiter, realtime_priority, reduce_timer_slack
from .relay import Relay
from .rxstamp import ClockMap, clock

logger = logging.getLogger(__name__)

#: Seconds between housekeeping sweeps (clock offset, mapping expiry).
HOUSEKEEPING = 0.25


def open_descriptors() -> int:
    """How many descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


class Engine:
    """The relay process's loop and its end of the control channel."""

    def __init__(self, channel: socket.socket, *, realtime: bool = False) -> None:
        self.waiter = Waiter()  # first, so that its descriptor number is low
        self.clocks = ClockMap()
        self.nofile = raise_fd_limit()
        self.realtime = realtime and realtime_priority()
        self.relays: dict[int, Relay] = {}
        self._next_id = 1
        self._channel = channel
        self._reader = control.LineReader()
        self._stop = False
        self._housekeep_at = clock()
        channel.setblocking(True)
        self.waiter.watch(channel, self._on_control)

    # -- the loop -------------------------------------------------------------
    def run(self) -> None:
        reduce_timer_slack()
        self.emit("ready", {"pid": os.getpid(), "nofile": list(self.nofile),
                            "realtime": self.realtime})
        while not self._stop:
            try:
                self._step()
            except Exception as exc:
                # One relay's bug must not stop the others: say so and go on.
                logger.exception("netsim relay process: loop step failed")
                self.emit("error", {"message": f"{type(exc).__name__}: {exc}"})
        for relay in self.relays.values():
            relay.close()
        self.relays.clear()
        self.waiter.close()

    def _step(self) -> None:
        now = clock()
        if now >= self._housekeep_at:
            self._housekeep(now)
        wake = self._earliest()
        if wake is None or wake - SPIN > now:
            target = self._housekeep_at if wake is None else min(wake - SPIN, self._housekeep_at)
            self.waiter.wait(max(target - now, 0.0))
            return
        # Spin: a pure spin, because sleep(0) and sched_yield() each cost
        # 50-500 us here; arrivals are polled meanwhile and may bring the
        # deadline forward.
        while clock() < wake and not self._stop:
            self.waiter.wait(0)
            nxt = self._earliest()
            if nxt is not None and nxt < wake:
                wake = nxt
        now = clock()
        for relay in self.relays.values():  # pop only sends: no relay opens or closes
            relay.pop(now)

    def _earliest(self) -> float | None:
        # A running minimum: the spin loop asks this after every poll.
        earliest = None
        for relay in self.relays.values():
            wake = relay.next_wakeup()
            if wake is not None and (earliest is None or wake < earliest):
                earliest = wake
        return earliest

    def _housekeep(self, now: float) -> None:
        self.clocks.refresh(now)
        for relay in self.relays.values():
            relay.expire(now)
        self._housekeep_at = now + HOUSEKEEPING

    # -- the control channel ----------------------------------------------------
    def emit(self, event: str, fields: dict[str, Any]) -> None:
        self._send({"event": event, **fields})

    def _send(self, message: Message) -> None:
        try:
            self._channel.sendall(control.encode(message))
        except OSError:
            self._stop = True  # the parent is gone

    def _on_control(self) -> None:
        try:
            data = self._channel.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._stop = True  # the parent closed the channel: time to go
            return
        try:
            for message in self._reader.feed(data):
                self._answer(message)
        except ControlError as exc:
            logger.error("netsim relay process: %s", exc)
            self.emit("error", {"message": str(exc)})

    def _answer(self, message: Message) -> None:
        request = message.get("id")
        op = message.get("op")
        handler = self._OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            known = ", ".join(self._OPS)
            self._send({"id": request, "error": f"unknown op {op!r}; known: {known}"})
            return
        try:
            result = handler(self, message)
        except (ControlError, ValueError, OSError) as exc:
            self._send({"id": request, "error": str(exc)})
        except Exception as exc:  # a bug: answer anyway, or the parent waits for ever
            logger.exception("netsim relay process: %s failed", op)
            self._send({"id": request, "error": f"{op} failed: {type(exc).__name__}: {exc}"})
        else:
            self._send({"id": request, "ok": result})

    def _relay(self, message: Message) -> tuple[int, Relay]:
        key = message.get("relay")
        relay = self.relays.get(key) if isinstance(key, int) else None
        if relay is None:
            known = ", ".join(map(str, self.relays)) or "none"
            raise ControlError(f"unknown relay {key!r}; open relays: {known}")
        assert isinstance(key, int)
        return key, relay

    def _op_open(self, m: Message) -> dict[str, Any]:
        allowed = m.get("allowed")
        event_log = m.get("event_log")
        relay_id = self._next_id

        def on_event(event: str, fields: dict[str, Any]) -> None:
            self.emit(event, {"relay": relay_id, **fields})

        relay = Relay(
            control.unpack_profile(m.get("profile")),
            address(m.get("listen"), "listen"),
            address(m.get("forward"), "forward"),
            waiter=self.waiter,
            clocks=self.clocks,
            on_event=on_event,
            event_log=Path(event_log) if isinstance(event_log, str) else None,
            allowed=None if allowed is None else [address(a, "allowed") for a in allowed],
            idle_timeout=float(m.get("idle_timeout", IDLE_TIMEOUT)),
            max_mappings=int(m.get("max_mappings", MAX_MAPPINGS)),
            window=int(m.get("window", 4096)),
        )
        self._next_id += 1
        self.relays[relay_id] = relay
        return {"relay": relay_id, "address": list(relay.address)}

    def _op_upstream(self, m: Message) -> dict[str, Any]:
        _, relay = self._relay(m)
        return {"address": list(relay.upstream_address(address(m.get("client"), "client"),
                                                       clock()))}

    def _op_forward(self, m: Message) -> dict[str, Any]:
        _, relay = self._relay(m)
        relay.forward = address(m.get("address"), "address")
        return {}

    def _op_stats(self, m: Message) -> dict[str, Any]:
        _, relay = self._relay(m)
        return relay.stats(clock()).to_json()

    def _op_close(self, m: Message) -> dict[str, Any]:
        key, relay = self._relay(m)
        relay.close()
        del self.relays[key]
        return {}

    def _op_process(self, m: Message) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "open_fds": open_descriptors(),
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "relays": len(self.relays),
            "mappings": sum(len(r.mappings) for r in self.relays.values()),
            "clock_offset_ns": self.clocks.offset_ns,
        }

    _OPS: dict[str, Callable[[Engine, Message], dict[str, Any]]] = {
        "open": _op_open,
        "upstream": _op_upstream,
        "forward": _op_forward,
        "stats": _op_stats,
        "close": _op_close,
        "process": _op_process,
    }


def _die_with_parent() -> None:
    """SIGTERM when the parent dies, even if the channel stays open elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.netsim.engine")
    parser.add_argument("--control-fd", type=int, required=True,
                        help="a connected Unix stream socket to the parent")
    parser.add_argument("--realtime", action="store_true", help="run in SCHED_FIFO")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format=f"netsim relay process [{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    # Ctrl-C in a terminal reaches the whole process group; the parent
    # decides when the relay stops (by closing the channel).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    channel = socket.socket(fileno=args.control_fd)
    engine = Engine(channel, realtime=args.realtime)
    gc.freeze()  # a full collection would walk every module's objects (cloudarcade.runtime.run)
    engine.run()
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
