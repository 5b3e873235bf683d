"""Departure timing inside the relay process: directions and the wait strategy.

``Direction`` holds one direction's chain, counters and log, and sends each
packet at its departure time. ``Waiter`` is the relay process's one wait:
epoll for any number of sockets (no descriptor ceiling), with a microsecond
timeout. The engine waits in it until ``SPIN`` before the earliest deadline,
then spins on the clock, polling the sockets without blocking, and sends.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import select
import socket
from collections.abc import Callable

from .eventlog import EventLog
from .packet import Packet
from .rxstamp import clock
from .stage import Chain
from .stats import Recorder

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: How long before a deadline the engine stops waiting and spins: with 1 us
#: timer slack, a timed wait wakes ~55 us late at p50 and ~0.1 ms at p90 on
#: our shared 2-core machines.
SPIN = 0.00025
#: select(2) watches descriptors below this only.
_FD_SETSIZE = 1024


class Direction:
    """One direction of one relay: its chain, counters and log.

    Arrivals carry the kernel's receive time; a packet enters the chain at
    that time (or at the chain's latest time, if the relay already moved past
    it), so every delay it reports includes the relay's own lateness.
    """

    def __init__(
        self,
        name: str,
        chain: Chain,
        send: Callable[[Packet], bool],
        log: EventLog | None,
        window: int,
    ) -> None:
        self.name = name
        self.chain = chain
        self.send = send
        self.log = log
        self.rec = Recorder(window)
        self._seq = 0
        self._now = float("-inf")  # the latest time handed to the chain

    def receive(self, data: bytes, route: Address, arrival: float, read_at: float) -> None:
        """A datagram the kernel received at ``arrival`` and the relay read at ``read_at``."""
        self._seq += 1
        packet = Packet(data, arrival, self._seq, route=route)
        self.rec.arrived(packet.size, read_at - arrival)
        if self.log is not None:
            self.log.arrival(arrival, packet.size)
        # Stages take non-decreasing times; a packet read after the chain
        # was polled past its arrival enters at the poll time.
        self._now = max(self._now, arrival)
        self.chain.push(packet, self._now)
        self._note_drops()

    def refused(self, reason: str, count: int = 1) -> None:
        """``count`` datagrams turned away before the chain (unknown source, table full)."""
        self.rec.refused(reason, count)

    def next_wakeup(self) -> float | None:
        return self.chain.next_wakeup()

    def pop(self, now: float) -> None:
        """Send what is due at ``now``."""
        self._now = max(self._now, now)
        ready = self.chain.pop_ready(self._now)
        self._note_drops()
        for packet in ready:
            # Stamped when handed to the kernel: on loopback sendto also runs
            # the receiver's side, which is not the relay's timing error.
            actual = clock()
            self.rec.sent(packet, actual)
            if self.send(packet):
                if self.log is not None:
                    self.log.departure(actual, packet.size, actual - packet.arrival)
            else:
                self.rec.send_failed(packet)
                if self.log is not None:
                    self.log.drop(actual, packet.size, "send")

    def _note_drops(self) -> None:
        drops = self.chain.take_drops()
        if drops:
            self.rec.dropped(drops)
            if self.log is not None:
                for d in drops:
                    self.log.drop(d.time, d.packet.size, d.reason)


class Waiter:
    """epoll over the relay process's sockets, with a microsecond timeout.

    ``epoll_wait`` rounds its timeout up to whole milliseconds, which alone
    would overshoot ``SPIN``. So the timed wait is a ``select`` on the epoll
    descriptor itself (readable when any watched socket is), created first so
    that its number is low; then ``epoll.poll(0)`` says which sockets. The
    sockets themselves may have any descriptor number.
    """

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self._fd = self.epoll.fileno()
        self._callbacks: dict[int, Callable[[], None]] = {}
        if self._fd >= _FD_SETSIZE:
            logger.warning("epoll descriptor %d >= %d: waits round up to whole ms",
                           self._fd, _FD_SETSIZE)

    def watch(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever ``sock`` is readable."""
        fd = sock.fileno()
        self.epoll.register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback

    def unwatch(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (before closing it: its number will be reused)."""
        fd = sock.fileno()
        if self._callbacks.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self.epoll.unregister(fd)

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` s (0: just poll), then run the ready sockets' callbacks."""
        if timeout > 0:
            if self._fd < _FD_SETSIZE:
                readable, _, _ = select.select([self._fd], [], [], timeout)
                if not readable:
                    return
                events = self.epoll.poll(0)
            else:
                events = self.epoll.poll(math.floor(timeout * 1000) / 1000)
        else:
            events = self.epoll.poll(0)
        for fd, _ in events:
            callback = self._callbacks.get(fd)
            if callback is None:
                continue  # unwatched by an earlier callback of this batch
            try:
                callback()
            except Exception:
                logger.exception("netsim relay: receive callback failed")

    def close(self) -> None:
        self._callbacks.clear()
        self.epoll.close()


def realtime_priority() -> bool:
    """Put this process in SCHED_FIFO (needs CAP_SYS_NICE), so that other busy
    processes cannot preempt it between its wake-up and its deadline. The
    kernel's RT throttling still leaves 5% of each second to everyone else."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError) as exc:
        logger.warning("netsim: no real-time priority for the relay (%s); timing may suffer", exc)
        return False
    return True


def reduce_timer_slack() -> None:
    """Ask Linux for 1 us timer slack (default 50 us) so timed waits wake
    closer to their deadline; harmless where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        logger.debug("cannot set timer slack; waits wake up to 50 us later")
