"""One relay inside the relay process: a listen socket, a NAT table and two
directions that apply a profile's chains.

Topology (a NAT with one mapping per client)::

    client --(listen socket)--> [uplink chain] --(upstream socket per client)--> forward
    client <--(listen socket)-- [downlink chain] <--(same upstream socket)------ forward

Mappings expire after ``idle_timeout`` and are capped (``netsim.mapping``); a
relay given ``allowed`` addresses takes packets from those sources only. The
engine (``netsim.engine``) owns the wait and the clock; a relay only reacts to
readable sockets and to ``pop(now)``. The parent process reaches relays
through ``netsim.process``.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import rxstamp
from .eventlog import EventLog, log_paths
from .mapping import IDLE_TIMEOUT, MAX_MAPPINGS, Mappings
from .pacing import Direction, Waiter
from .packet import Packet
from .profile import Profile
from .rxstamp import ClockMap, clock
from .stats import RelayStats

logger = logging.getLogger(__name__)

Address = tuple[str, int]
EventSink = Callable[[str, dict[str, Any]], None]

#: At most this many datagrams per socket per wake-up, so that one busy
#: socket cannot starve the others.
_BATCH = 256


def udp_socket(addr: Address) -> socket.socket:
    """A non-blocking, kernel-timestamping UDP socket bound to ``addr``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # Bursts at 20k packets/s overflow the default buffers.
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 21)
        rxstamp.enable(sock)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


class Relay:
    """Puts ``profile`` between clients and ``forward``; run by an ``Engine``."""

    def __init__(
        self,
        profile: Profile,
        listen: Address,
        forward: Address,
        *,
        waiter: Waiter,
        clocks: ClockMap,
        on_event: EventSink,
        event_log: Path | None = None,
        allowed: Iterable[Address] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_mappings: int = MAX_MAPPINGS,
        window: int = 4096,
    ) -> None:
        self.profile = profile
        self.forward = forward
        self._waiter = waiter
        self._clocks = clocks
        self._on_event = on_event
        self.mappings: Mappings[socket.socket] = Mappings(
            idle_timeout=idle_timeout, cap=max_mappings, allowed=allowed
        )
        self._refusals_told: set[str] = set()
        self._overflows: dict[int, int] = {}  # socket fd -> the kernel's drop count seen
        self._logs: list[EventLog] = []
        self.started_at = clock()
        paths = log_paths(event_log) if event_log is not None else {}
        self.dirs: dict[str, Direction] = {}
        for name, send in (("uplink", self._send_up), ("downlink", self._send_down)):
            log = None
            if name in paths:
                header = f"cloudarcade netsim {name}, profile {profile.name}, seed {profile.seed}"
                log = EventLog(paths[name], self.started_at, header)
                self._logs.append(log)
            self.dirs[name] = Direction(name, profile.build_chain(name), send, log, window)
        self._sock = udp_socket(listen)
        waiter.watch(self._sock, self._on_listen)
        self.address: Address = self._sock.getsockname()
        logger.info("netsim relay %s:%d -> %s:%d, profile %s",
                    *self.address, *forward, profile.name)

    # -- arrivals -----------------------------------------------------------
    def _stamped(
        self, sock: socket.socket, direction: Direction
    ) -> Iterable[tuple[bytes, Address, float, float]]:
        """Up to ``_BATCH`` datagrams: (data, source, kernel arrival, read time).

        Datagrams the kernel dropped because the socket's buffer was full are
        counted against ``direction`` (reason ``overflow``).
        """
        for _ in range(_BATCH):
            try:
                data, addr, kernel_ns, overflowed = rxstamp.receive(sock)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier send
                logger.debug("netsim socket %s: %s", sock.getsockname(), exc)
                return
            read_at = clock()
            if overflowed:
                seen = self._overflows.get(sock.fileno(), 0)
                if overflowed > seen:
                    direction.refused("overflow", overflowed - seen)
                self._overflows[sock.fileno()] = overflowed
            arrival = read_at if kernel_ns is None else self._clocks.to_monotonic(kernel_ns)
            yield data, addr, min(arrival, read_at), read_at

    def _on_listen(self) -> None:
        up = self.dirs["uplink"]
        for data, addr, arrival, read_at in self._stamped(self._sock, up):
            if self.mappings.get(addr, read_at) is None:
                refusal = self.mappings.refusal(addr)
                if refusal is not None:
                    up.refused(refusal)
                    self._tell_refusal(refusal, addr)
                    continue
                self._open(addr, read_at)
            up.receive(data, addr, arrival, read_at)

    def _on_upstream(self, sock: socket.socket, client: Address) -> None:
        down = self.dirs["downlink"]
        for data, addr, arrival, read_at in self._stamped(sock, down):
            if addr != self.forward:
                # Like a NAT: only the forward side may answer on a mapping.
                down.refused("source")
                continue
            if self.mappings.get(client, read_at) is not None:
                down.receive(data, client, arrival, read_at)

    def _tell_refusal(self, reason: str, addr: Address) -> None:
        if reason not in self._refusals_told:  # once per reason; the stats count them all
            self._refusals_told.add(reason)
            self._on_event("refused", {"reason": reason, "client": list(addr)})

    # -- the NAT table ------------------------------------------------------
    def upstream_address(self, client: Address, now: float) -> Address:
        """The address the forward side sees ``client`` as, opening the mapping now.

        Signaling gives this address to the forward side in place of the
        client's own, so that the forward side's packets to the client (ICE
        checks included) go through the relay too. Raises ValueError when the
        client may not have a mapping.
        """
        sock = self.mappings.get(client, now)
        if sock is None:
            refusal = self.mappings.refusal(client)
            if refusal is not None:
                raise ValueError(f"no mapping for {client[0]}:{client[1]}: refused ({refusal})")
            sock = self._open(client, now)
        addr: Address = sock.getsockname()
        return addr

    def _open(self, client: Address, now: float) -> socket.socket:
        sock = udp_socket((self.forward[0], 0))
        self.mappings.add(client, sock, now)
        self._waiter.watch(sock, functools.partial(self._on_upstream, sock, client))
        logger.debug("new client %s:%d via upstream port %d", *client, sock.getsockname()[1])
        return sock

    def expire(self, now: float) -> None:
        """Close the mappings idle for the idle timeout."""
        for client, sock in self.mappings.expire(now):
            self._close_socket(sock)
            logger.debug("mapping of %s:%d expired", *client)
        # The caller learns of expiries from the stats; one event per sweep.

    def _close_socket(self, sock: socket.socket) -> None:
        self._waiter.unwatch(sock)
        self._overflows.pop(sock.fileno(), None)
        sock.close()

    # -- departures ---------------------------------------------------------
    def next_wakeup(self) -> float | None:
        earliest = None
        for direction in self.dirs.values():
            wake = direction.next_wakeup()
            if wake is not None and (earliest is None or wake < earliest):
                earliest = wake
        return earliest

    def pop(self, now: float) -> None:
        for d in self.dirs.values():
            d.pop(now)

    def _send_up(self, packet: Packet) -> bool:
        assert packet.route is not None
        sock = self.mappings.peek(packet.route)
        if sock is None:
            return False  # the mapping expired while the packet was in the link
        try:
            sock.sendto(packet.data, self.forward)
        except OSError as exc:
            logger.debug("uplink send failed: %s", exc)
            return False
        return True

    def _send_down(self, packet: Packet) -> bool:
        assert packet.route is not None
        try:
            self._sock.sendto(packet.data, packet.route)
        except OSError as exc:
            logger.debug("downlink send failed: %s", exc)
            return False
        return True

    # -- the rest -----------------------------------------------------------
    def stats(self, now: float) -> RelayStats:
        up, down = self.dirs["uplink"], self.dirs["downlink"]
        return RelayStats(
            uplink=up.rec.snapshot(now, up.chain.clock_origin),
            downlink=down.rec.snapshot(now, down.chain.clock_origin),
            mappings=len(self.mappings),
            mappings_opened=self.mappings.opened,
            mappings_expired=self.mappings.expired,
        )

    def close(self) -> None:
        """Close sockets and logs; packets still in flight are discarded."""
        for sock in [self._sock, *self.mappings.clear()]:
            self._close_socket(sock)
        for log in self._logs:
            log.close()
        self._logs.clear()
