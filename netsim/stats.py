"""Relay statistics: counters and recent-sample percentiles per direction."""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from .packet import Drop, Packet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectionStats:
    """One direction's figures at the moment ``Relay.stats()`` was called.

    Percentiles cover the most recent departures (a bounded window, see
    ``Recorder``); ``rate_bps`` counts payload bits sent in the last second.
    ``late_*`` is the relay's own timing error: actual minus scheduled departure.
    """

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    queue_delay_p50_ms: float = 0.0
    delay_p50_ms: float = 0.0
    rate_bps: float = 0.0
    late_p50_us: float = 0.0
    late_p99_us: float = 0.0
    late_max_us: float = 0.0


@dataclass(frozen=True)
class RelayStats:
    """Both directions: uplink is client -> forward, downlink forward -> client."""

    uplink: DirectionStats
    downlink: DirectionStats


class Recorder:
    """Counts what one direction receives, sends and drops.

    Written from the event-loop thread (arrivals) and the sender thread
    (departures); the lock keeps the windows consistent for ``snapshot``.
    """

    def __init__(self, window: int = 4096) -> None:
        self._lock = threading.Lock()
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.drops: Counter[str] = Counter()
        self.delay: deque[float] = deque(maxlen=window)
        self.queue_delay: deque[float] = deque(maxlen=window)
        self.late: deque[float] = deque(maxlen=window)
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0

    def arrived(self, size: int) -> None:
        with self._lock:
            self.packets_in += 1
            self.bytes_in += size

    def dropped(self, drops: list[Drop]) -> None:
        with self._lock:
            for d in drops:
                self.drops[d.reason] += 1

    def sent(self, packet: Packet, actual: float) -> None:
        with self._lock:
            self.packets_out += 1
            self.bytes_out += packet.size
            self.delay.append(actual - packet.arrival)
            self.queue_delay.append(packet.queue_delay)
            self.late.append(actual - packet.time)
            self._sent.append((actual, packet.size))
            self._sent_bytes += packet.size
            self._trim(actual)

    def send_failed(self, packet: Packet) -> None:
        """Undo ``sent`` for a packet the socket refused; count it as a drop."""
        with self._lock:
            self.packets_out -= 1
            self.bytes_out -= packet.size
            self.drops["send"] += 1

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - 1.0:
            self._sent_bytes -= self._sent.popleft()[1]

    def snapshot(self, now: float) -> DirectionStats:
        with self._lock:
            self._trim(now)
            delay = np.array(self.delay)
            qd = np.array(self.queue_delay)
            late = np.array(self.late)
            return DirectionStats(
                packets_in=self.packets_in,
                bytes_in=self.bytes_in,
                packets_out=self.packets_out,
                bytes_out=self.bytes_out,
                drops=dict(self.drops),
                queue_delay_p50_ms=float(np.median(qd)) * 1e3 if qd.size else 0.0,
                delay_p50_ms=float(np.median(delay)) * 1e3 if delay.size else 0.0,
                rate_bps=self._sent_bytes * 8.0,
                late_p50_us=float(np.percentile(late, 50)) * 1e6 if late.size else 0.0,
                late_p99_us=float(np.percentile(late, 99)) * 1e6 if late.size else 0.0,
                late_max_us=float(late.max()) * 1e6 if late.size else 0.0,
            )
