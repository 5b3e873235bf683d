"""An asyncio UDP relay that applies a profile's chains on loopback.

Topology (a NAT with one mapping per client)::

    client --(listen socket)--> [uplink chain] --(upstream socket per client)--> forward
    client <--(listen socket)-- [downlink chain] <--(same upstream socket)------ forward

The event loop receives (``add_reader`` on every socket) and pushes packets into
the chains. Departures are paced by ONE timer per direction. ``asyncio``'s
``call_at`` fires ~0.6 ms late at p50 on our machines, too coarse for a 0.5 ms
p99 budget, so the default timer is a dedicated thread per direction that sleeps
on a Condition until ``SPIN`` before the deadline and then spins; it sends with
``sendto`` on the non-blocking sockets. ``timer="asyncio"`` keeps everything on
the loop (used by the benchmark for comparison).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .eventlog import EventLog, log_paths
from .packet import Packet
from .profile import Profile
from .stage import Chain
from .stats import Recorder, RelayStats

logger = logging.getLogger(__name__)

clock = time.perf_counter
#: How long before a deadline the sender thread stops sleeping and spins:
#: with 1 us timer slack a Condition wait wakes ~60 us late at p50 and
#: ~0.25 ms at p99 on our shared 2-core machines.
SPIN = 0.0003
#: While a threaded relay runs, the GIL switch interval is lowered to this so
#: the waking sender thread gets the GIL quickly from a busy event loop.
SWITCH_INTERVAL = 0.0002
_MAX_DATAGRAM = 65535

Address = tuple[str, int]


class _Direction:
    """One direction: its chain, its deadline (its one timer), counters and log."""

    def __init__(
        self,
        name: str,
        chain: Chain,
        send: Callable[[Packet], bool],
        loop: asyncio.AbstractEventLoop,
        pacer: _Pacer | None,
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
            if wake is not None and (self.deadline is None or wake < self.deadline):
                self.deadline = wake
                if self.pacer is not None:
                    self.pacer.moved_up(wake)
                else:
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


class _Pacer:
    """The sender thread: serves the deadlines of both directions.

    It sleeps on a Condition until SPIN before the earliest deadline, then spins
    on the clock and sends. One thread rather than one per direction: two
    spinning threads would fight over the GIL and delay each other.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.directions: list[_Direction] = []
        self._target: float | None = None  # the earliest deadline it is waiting for
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="netsim-pacer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def moved_up(self, wake: float) -> None:
        """Called under ``cond`` when a direction's deadline became earlier."""
        if self._target is None or wake < self._target:
            self._target = wake
            self.cond.notify()

    def _earliest(self) -> float | None:
        wakes = []
        for d in self.directions:
            d.deadline = d.chain.next_wakeup()
            if d.deadline is not None:
                wakes.append(d.deadline)
        return min(wakes) if wakes else None

    def _run(self) -> None:
        _reduce_timer_slack()
        cond = self.cond
        try:
            while True:
                with cond:
                    while True:
                        if self._stop:
                            return
                        wake = self._target = self._earliest()
                        if wake is None:
                            cond.wait()
                            continue
                        delta = wake - clock()
                        if delta <= SPIN:
                            break
                        cond.wait(delta - SPIN)
                # Spin outside the lock so arrivals are not blocked. A pure spin:
                # sleep(0) and sched_yield() each cost 50-500 us here; the low
                # switch interval lets the event loop take the GIL meanwhile.
                while clock() < wake:
                    earlier = self._target  # an arrival may have moved it up
                    if earlier is not None and earlier < wake:
                        wake = earlier
                with cond:
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
        with self.cond:
            self._stop = True
            self.cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


def _reduce_timer_slack() -> None:
    """Ask Linux for 1 us timer slack on this thread (default 50 us) so timed
    waits wake closer to their deadline; harmless where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        logger.debug("cannot set timer slack; waits wake up to 50 us later")


def _udp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    # Bursts at 20k packets/s overflow the default buffers.
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 21)
    sock.bind((host, 0))
    return sock


class Relay:
    """A UDP relay that puts ``profile`` between clients and ``forward``.

    ``listen`` port 0 picks a free port; ``start()`` returns the bound address.
    With ``event_log``, writes ``<stem>.uplink<suffix>`` and
    ``<stem>.downlink<suffix>`` (see ``netsim.eventlog``).
    """

    def __init__(
        self,
        profile: Profile,
        listen: Address,
        forward: Address,
        *,
        event_log: Path | None = None,
        timer: str = "thread",
        window: int = 4096,
    ) -> None:
        if timer not in ("thread", "asyncio"):
            raise ValueError(f"unknown timer {timer!r}; known: thread, asyncio")
        self.profile = profile
        self.listen = listen
        self.forward = forward
        self.event_log = event_log
        self.event_log_paths = log_paths(event_log) if event_log is not None else {}
        self.timer = timer
        self.window = window
        self._sock: socket.socket | None = None
        self._upstream: dict[Address, socket.socket] = {}
        self._dirs: dict[str, _Direction] = {}
        self._logs: list[EventLog] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pacer: _Pacer | None = None
        self._old_switch: float | None = None
        self.started_at = 0.0

    async def start(self) -> Address:
        """Bind and start relaying; returns the actual listen address."""
        self._loop = asyncio.get_running_loop()
        self.started_at = clock()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 21)
        try:
            sock.bind(self.listen)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._pacer = _Pacer() if self.timer == "thread" else None
        for name, send in (("uplink", self._send_up), ("downlink", self._send_down)):
            log = None
            if self.event_log is not None:
                header = (
                    f"cloudarcade netsim {name}, profile {self.profile.name}, "
                    f"seed {self.profile.seed}"
                )
                log = EventLog(self.event_log_paths[name], self.started_at, header)
                self._logs.append(log)
            self._dirs[name] = _Direction(
                name,
                self.profile.build_chain(name),
                send,
                self._loop,
                self._pacer,
                log,
                self.window,
            )
        if self._pacer is not None:
            self._pacer.directions = list(self._dirs.values())
            self._pacer.start()
        if self.timer == "thread" and sys.getswitchinterval() > SWITCH_INTERVAL:
            self._old_switch = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._loop.add_reader(sock, self._on_listen)
        addr: Address = sock.getsockname()
        logger.info(
            "netsim relay %s:%d -> %s:%d, profile %s", *addr, *self.forward, self.profile.name
        )
        return addr

    @property
    def address(self) -> Address:
        if self._sock is None:
            raise RuntimeError("relay not started")
        addr: Address = self._sock.getsockname()
        return addr

    def _on_listen(self) -> None:
        assert self._sock is not None
        up = self._dirs["uplink"]
        for _ in range(256):  # bounded, so one busy socket cannot starve the loop
            try:
                data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.debug("listen socket: %s", exc)
                return
            now = clock()
            if addr not in self._upstream:
                self._open_upstream(addr)
            up.receive(data, addr, now)

    def _open_upstream(self, client: Address) -> None:
        assert self._loop is not None
        sock = _udp_socket(self.forward[0])
        self._upstream[client] = sock
        self._loop.add_reader(sock, self._on_upstream, sock, client)
        logger.debug("new client %s:%d via upstream port %d", *client, sock.getsockname()[1])

    def _on_upstream(self, sock: socket.socket, client: Address) -> None:
        down = self._dirs["downlink"]
        for _ in range(256):
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.debug("upstream socket: %s", exc)
                return
            if addr != self.forward:
                continue  # like a NAT: only the forward side may answer on this mapping
            down.receive(data, client, clock())

    def _send_up(self, packet: Packet) -> bool:
        assert packet.route is not None
        try:
            self._upstream[packet.route].sendto(packet.data, self.forward)
        except OSError as exc:
            logger.debug("uplink send failed: %s", exc)
            return False
        return True

    def _send_down(self, packet: Packet) -> bool:
        assert self._sock is not None and packet.route is not None
        try:
            self._sock.sendto(packet.data, packet.route)
        except OSError as exc:
            logger.debug("downlink send failed: %s", exc)
            return False
        return True

    def stats(self) -> RelayStats:
        """Counters and recent percentiles for both directions."""
        now = clock()
        return RelayStats(
            uplink=self._dirs["uplink"].rec.snapshot(now),
            downlink=self._dirs["downlink"].rec.snapshot(now),
        )

    async def close(self) -> None:
        """Stop timers, close sockets and logs; packets still in flight are discarded."""
        loop = self._loop
        if self._pacer is not None:
            self._pacer.close()
        for d in self._dirs.values():
            d.close()
        for s in [self._sock, *self._upstream.values()]:
            if s is not None:
                if loop is not None:
                    loop.remove_reader(s)
                s.close()
        self._sock = None
        self._upstream.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._old_switch is not None:
            sys.setswitchinterval(self._old_switch)
            self._old_switch = None

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_relay(
    profile: Profile,
    forward: Address,
    *,
    listen: Address = ("127.0.0.1", 0),
    event_log: Path | None = None,
    timer: str = "thread",
) -> Relay:
    """Create and start a relay to ``forward``; read ``relay.address`` for its port."""
    relay = Relay(profile, listen, forward, event_log=event_log, timer=timer)
    await relay.start()
    return relay
