"""An asyncio UDP relay that applies a profile's chains on loopback.

Topology (a NAT with one mapping per client)::

    client --(listen socket)--> [uplink chain] --(upstream socket per client)--> forward
    client <--(listen socket)-- [downlink chain] <--(same upstream socket)------ forward

Departures are paced by ONE timer per direction, never a task per packet.
``asyncio``'s ``call_at`` fires ~0.6 ms late at p50 on our machines, too coarse
for a 0.5 ms p99 budget, so the default (``timer="thread"``) is a dedicated
I/O thread that waits in ``select`` until ``SPIN`` before the earliest deadline,
then spins and sends with ``sendto`` on the non-blocking sockets; it also does
the receiving (see ``_Pacer``). ``timer="asyncio"`` keeps everything on the
event loop (``add_reader`` + ``call_at``), for comparison in the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import selectors
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
#: How long before a deadline the pacer stops waiting in select() and spins:
#: with 1 us timer slack, select() wakes ~55 us late at p50 and ~0.1 ms at p90
#: on our shared 2-core machines.
SPIN = 0.00025
#: While a threaded relay runs, the GIL switch interval is lowered to this:
#: the spinning pacer holds the GIL, and other threads of the process (the
#: event loop of a server sharing it) would otherwise wait up to 5 ms for it.
#: Measured: late p99 0.37 ms at 0.2 ms, 0.18 ms at 0.05 ms.
SWITCH_INTERVAL = 0.00005
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
    """The I/O thread of a threaded relay: receives, and serves both directions' deadlines.

    It waits in ``select`` (epoll) until SPIN before the earliest deadline, then
    spins on the clock, polling the sockets without blocking, and sends. It
    receives as well as sends: if the event loop received instead, the two
    threads would hand the GIL back and forth at every packet and each side
    would wait up to a switch interval (measured: +0.2 ms median end to end).
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()  # guards the chains against stats readers
        self.directions: list[_Direction] = []
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
        self._thread.start()

    def moved_up(self, wake: float) -> None:
        """A direction's deadline became earlier; the loop re-reads deadlines anyway."""

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
        self._stop = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
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
        if self.timer == "thread":
            _switch_interval(+1)
            self._old_switch = SWITCH_INTERVAL
        self._watch(sock, self._on_listen)
        if self._pacer is not None:
            self._pacer.directions = list(self._dirs.values())
            self._pacer.start()
        addr: Address = sock.getsockname()
        logger.info(
            "netsim relay %s:%d -> %s:%d, profile %s", *addr, *self.forward, self.profile.name
        )
        return addr

    def _watch(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        if self._pacer is not None:
            self._pacer.watch(sock, callback)
        else:
            assert self._loop is not None
            self._loop.add_reader(sock, callback)

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

    def upstream_address(self, client: Address) -> Address:
        """The address the forward side sees ``client`` as, opening the mapping now.

        Signaling gives this address to the forward side in place of the
        client's own, so that the forward side's packets to the client (ICE
        checks included) go through the relay too and cannot take a direct
        path around it.
        """
        if client not in self._upstream:
            self._open_upstream(client)
        addr: Address = self._upstream[client].getsockname()
        return addr

    def _open_upstream(self, client: Address) -> None:
        assert self._loop is not None
        sock = _udp_socket(self.forward[0])
        self._upstream[client] = sock
        self._watch(sock, functools.partial(self._on_upstream, sock, client))
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
            self._pacer.close()  # joins the thread before its sockets go away
        for d in self._dirs.values():
            d.close()
        for s in [self._sock, *self._upstream.values()]:
            if s is not None:
                if loop is not None and self._pacer is None:
                    loop.remove_reader(s)
                s.close()
        self._sock = None
        self._upstream.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._old_switch is not None:
            _switch_interval(-1)
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
