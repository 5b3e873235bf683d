"""Queues in front of a bottleneck: drop-tail (packets or bytes) and CoDel.

A queue only stores and selects; the link stage that owns it records drops.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

from .packet import Packet

#: netem's default limit, kept so that an unconfigured queue behaves like netem's.
DEFAULT_LIMIT_PACKETS = 1000


class Queue(ABC):
    """FIFO storage with an admission rule (``enqueue``) and a service rule (``dequeue``)."""

    def __init__(self, packets: int | None = DEFAULT_LIMIT_PACKETS, bytes_: int | None = None):
        self.limit_packets = packets
        self.limit_bytes = bytes_
        self._q: deque[tuple[float, Packet]] = deque()
        self.bytes = 0
        #: Packets the queue discarded at dequeue time (AQM); the owner drains it.
        self.dropped: list[Packet] = []

    def __len__(self) -> int:
        return len(self._q)

    def head_time(self) -> float | None:
        """When the packet at the head was enqueued, or None if empty."""
        return self._q[0][0] if self._q else None

    def enqueue(self, packet: Packet, now: float) -> bool:
        """Store ``packet``; False when it does not fit (the caller drops it)."""
        if self.limit_packets is not None and len(self._q) >= self.limit_packets:
            return False
        if self.limit_bytes is not None and self.bytes + packet.size > self.limit_bytes:
            return False
        self._q.append((now, packet))
        self.bytes += packet.size
        return True

    def _pop(self, now: float) -> tuple[Packet, float] | None:
        if not self._q:
            return None
        t_in, packet = self._q.popleft()
        self.bytes -= packet.size
        packet.queue_delay = now - t_in
        return packet, now - t_in

    @abstractmethod
    def dequeue(self, now: float) -> Packet | None:
        """The next packet to serve at ``now``; its ``queue_delay`` is its sojourn."""


class DropTail(Queue):
    """Plain FIFO that refuses arrivals beyond the packet or byte limit."""

    def dequeue(self, now: float) -> Packet | None:
        got = self._pop(now)
        return got[0] if got else None


class CoDel(Queue):
    """CoDel (RFC 8289) on top of a drop-tail limit; drops at dequeue when the
    sojourn time stayed above ``target`` for at least ``interval``."""

    MTU = 1500

    def __init__(
        self,
        packets: int | None = DEFAULT_LIMIT_PACKETS,
        bytes_: int | None = None,
        *,
        target: float = 0.005,
        interval: float = 0.100,
    ) -> None:
        super().__init__(packets, bytes_)
        self.target, self.interval = target, interval
        self.first_above_time = 0.0
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def _dodequeue(self, now: float) -> tuple[Packet | None, bool]:
        got = self._pop(now)
        if got is None:
            self.first_above_time = 0.0
            return None, False
        packet, sojourn = got
        ok_to_drop = False
        if sojourn < self.target or self.bytes <= self.MTU:
            self.first_above_time = 0.0
        elif self.first_above_time == 0.0:
            self.first_above_time = now + self.interval
        elif now >= self.first_above_time:
            ok_to_drop = True
        return packet, ok_to_drop

    def _control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def dequeue(self, now: float) -> Packet | None:
        packet, ok_to_drop = self._dodequeue(now)
        if packet is None:
            self.dropping = False
            return None
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False
            while self.dropping and now >= self.drop_next and packet is not None:
                self.dropped.append(packet)
                self.count += 1
                packet, ok_to_drop = self._dodequeue(now)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self._control_law(self.drop_next)
        elif ok_to_drop:
            self.dropped.append(packet)
            packet, ok_to_drop = self._dodequeue(now)
            self.dropping = True
            delta = self.count - self.lastcount
            if delta > 1 and now - self.drop_next < 16 * self.interval:
                self.count = delta
            else:
                self.count = 1
            self.lastcount = self.count
            self.drop_next = self._control_law(now)
        return packet


def _limits(o: dict[str, Any]) -> tuple[int | None, int | None]:
    packets = o.get("packets", DEFAULT_LIMIT_PACKETS if "bytes" not in o else None)
    bytes_ = o.get("bytes")
    return (None if packets is None else int(packets)), (None if bytes_ is None else int(bytes_))


_QUEUES: dict[str, Callable[[dict[str, Any]], Queue]] = {
    "droptail": lambda o: DropTail(*_limits(o)),
    "codel": lambda o: CoDel(
        *_limits(o),
        target=float(o.get("target_ms", 5.0)) / 1000.0,
        interval=float(o.get("interval_ms", 100.0)) / 1000.0,
    ),
}
QUEUES = tuple(_QUEUES)


def create_queue(name: str, **opts: Any) -> Queue:
    """A queue by name: ``droptail`` or ``codel``; options ``packets``, ``bytes``,
    and for CoDel ``target_ms`` (5) and ``interval_ms`` (100)."""
    try:
        factory = _QUEUES[name]
    except KeyError:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(QUEUES)}") from None
    return factory(opts)
