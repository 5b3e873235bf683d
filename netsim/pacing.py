"""Departure timing for the relay: one deadline per direction, served by a thread.

``Direction`` holds a direction's chain, counters and log; ``Pacer`` is the I/O
thread that receives on the relay's sockets and sends each packet at its
departure time. ``Direction`` can also run on asyncio's ``call_at`` instead
(``timer="asyncio"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable

from .eventlog import EventLog
from .packet import Packet
from .stage import Chain
from .stats import Recorder

logger = logging.getLogger(__name__)

Address = tuple[str, int]

clock = time.perf_counter
#: How long before a deadline the pacer stops waiting in select() and spins:
#: with 1 us timer slack, select() wakes ~55 us late at p50 and ~0.1 ms at p90
#: on our shared 2-core machines.
SPIN = 0.00025
#: While a threaded relay runs, the GIL switch interval is lowered to this:
#: the spinning pacer holds the GIL, and other threads of the process (the
#: event loop of a server sharing it) would otherwise wait up to 5 ms for it.
#: Measured: late p99 0.37 ms at 0.2 ms, 0.18 ms at 0.05 ms.
SWITCH_INTERVAL = 0.00005


class Direction:
    """One direction: its chain, its deadline (its one timer), counters and log."""

    def __init__(
        self,
        name: str,
        chain: Chain,
        send: Callable[[Packet], bool],
        loop: asyncio.AbstractEventLoop,
        pacer: Pacer | None,
        log: EventLog | None,
        window: int,
    ) -> None:
        self.name = name
        self.chain = chain
        self.send = send
        self.loop = loop
        self.pacer = pacer
        self.log = log
        self.rec = Recorder(window)
        self._seq = 0
        # Shared with the pacer thread: the chain is touched only under it.
        self.lock = pacer.cond if pacer is not None else threading.Condition()
        self.deadline: float | None = None  # what this direction's timer is armed for
        self._handle: asyncio.TimerHandle | None = None

    # -- arrivals (event-loop thread) -------------------------------------
    def receive(self, data: bytes, route: Address, now: float) -> None:
        self._seq += 1
        packet = Packet(data, now, self._seq, route=route)
        self.rec.arrived(packet.size)
        if self.log is not None:
            self.log.arrival(now, packet.size)
        with self.lock:
            self.chain.push(packet, now)
            self.note_drops()
            wake = self.chain.next_wakeup()
            # The pacer re-reads every deadline after each receive; the asyncio
            # timer must be re-armed when the deadline moved up.
            if wake is not None and (self.deadline is None or wake < self.deadline):
                self.deadline = wake
                if self.pacer is None:
                    self._arm(wake)

    def note_drops(self) -> None:
        drops = self.chain.take_drops()
        if drops:
            self.rec.dropped(drops)
            if self.log is not None:
                for d in drops:
                    self.log.drop(d.time, d.packet.size, d.reason)

    # -- departures ---------------------------------------------------------
    def depart(self, ready: list[Packet]) -> None:
        for packet in ready:
            # Stamped when handed to the kernel: on loopback sendto also runs
            # the receiver's side, which is not the relay's timing error.
            # Counted before the send so that a receiver never sees a packet
            # the stats do not yet include.
            actual = clock()
            self.rec.sent(packet, actual)
            if self.send(packet):
                if self.log is not None:
                    self.log.departure(actual, packet.size, actual - packet.arrival)
            else:
                self.rec.send_failed(packet)
                if self.log is not None:
                    self.log.drop(actual, packet.size, "send")

    def _arm(self, wake: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(self.loop.time() + (wake - clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        with self.lock:
            ready = self.chain.pop_ready(clock())
            self.note_drops()
            wake = self.chain.next_wakeup()
            self.deadline = wake
        self.depart(ready)
        if wake is not None:
            self._arm(wake)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Pacer:
    """The I/O thread of a threaded relay: receives, and serves both directions' deadlines.

    It waits in ``select`` (epoll) until SPIN before the earliest deadline, then
    spins on the clock, polling the sockets without blocking, and sends. It
    receives as well as sends: if the event loop received instead, the two
    threads would hand the GIL back and forth at every packet and each side
    would wait up to a switch interval (measured: +0.2 ms median end to end).
    """

    def __init__(self, realtime: bool = False) -> None:
        self.realtime = realtime
        # Chains are touched from this thread only; the lock lets a caller on
        # another thread (a debugger, a test) inspect them safely.
        self.cond = threading.Condition()
        self.directions: list[Direction] = []
        # select(2), not epoll: epoll_wait's timeout is in whole milliseconds
        # (rounded up), which alone would overshoot SPIN. A relay has few sockets.
        self.selector = selectors.SelectSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="netsim-pacer", daemon=True)

    def watch(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        """Call ``callback`` when ``sock`` is readable (pacer thread, or before start)."""
        self.selector.register(sock, selectors.EVENT_READ, callback)

    def unwatch(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def start(self) -> None:
        """Start the thread; the GIL switch interval stays lowered until ``close``."""
        _switch_interval(+1)
        self._thread.start()

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)

    def _earliest(self) -> float | None:
        wakes = []
        for d in self.directions:
            d.deadline = d.chain.next_wakeup()
            if d.deadline is not None:
                wakes.append(d.deadline)
        return min(wakes) if wakes else None

    def _poll(self, timeout: float | None) -> None:
        for key, _ in self.selector.select(timeout):
            try:
                key.data()
            except Exception:
                logger.exception("netsim relay: receive callback failed")

    def _run(self) -> None:
        _reduce_timer_slack()
        if self.realtime:
            _realtime_priority()
        try:
            while not self._stop:
                wake = self._earliest()
                if wake is None:
                    self._poll(None)
                    continue
                delta = wake - clock() - SPIN
                if delta > 0:
                    self._poll(delta)
                    continue
                # Spin: a pure spin, because sleep(0) and sched_yield() each cost
                # 50-500 us here; arrivals are polled meanwhile and may bring
                # the deadline forward.
                while clock() < wake and not self._stop:
                    self._poll(0)
                    nxt = self._earliest()
                    if nxt is not None and nxt < wake:
                        wake = nxt
                with self.cond:
                    now = clock()
                    batches = []
                    for d in self.directions:
                        batches.append(d.chain.pop_ready(now))
                        d.note_drops()
                for d, ready in zip(self.directions, batches, strict=True):
                    d.depart(ready)
        except Exception:
            logger.exception("netsim pacer thread failed")

    def close(self) -> None:
        if self._stop:
            return  # closed already
        self._stop = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=2.0)
            _switch_interval(-1)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()


_switch_users = 0
_switch_saved = 0.005


def _switch_interval(delta: int) -> None:
    """Lower the GIL switch interval while any threaded relay runs; restore after."""
    global _switch_users, _switch_saved
    if delta > 0 and _switch_users == 0:
        _switch_saved = sys.getswitchinterval()
        sys.setswitchinterval(min(_switch_saved, SWITCH_INTERVAL))
    _switch_users += delta
    if delta < 0 and _switch_users == 0:
        sys.setswitchinterval(_switch_saved)


def _realtime_priority() -> None:
    """Put this thread in SCHED_FIFO (needs CAP_SYS_NICE), so that other busy
    processes cannot preempt it between its wake-up and its deadline. The
    kernel's RT throttling still leaves 5% of each second to everyone else."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError) as exc:
        logger.warning("netsim: no real-time priority for the pacer (%s); timing may suffer", exc)


def _reduce_timer_slack() -> None:
    """Ask Linux for 1 us timer slack on this thread (default 50 us) so timed
    waits wake closer to their deadline; harmless where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        logger.debug("cannot set timer slack; waits wake up to 50 us later")
