"""Relay statistics: counters and recent-sample percentiles per direction."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .packet import Drop, Packet


@dataclass(frozen=True)
class DirectionStats:
    """One direction's figures at the moment the stats were asked for.

    Percentiles cover the most recent packets (a bounded window, see
    ``Recorder``); ``rate_bps`` counts payload bits sent in the last second.
    Arrival is the kernel's receive time, so ``delay_*`` and ``late_*`` include
    the relay's own lateness. ``late_*`` is the relay's timing error: actual
    minus scheduled departure. ``read_lag_*`` is kernel arrival to the relay's
    read, on its own.
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
    read_lag_p50_us: float = 0.0
    read_lag_p99_us: float = 0.0
    read_lag_max_us: float = 0.0
    # When the direction's trace (or outage schedule) started: its first packet,
    # in the relay host's monotonic seconds (time.monotonic() in any process on
    # it). None for a profile with nothing that varies in time, or before a packet.
    origin: float | None = None


@dataclass(frozen=True)
class RelayStats:
    """Both directions (uplink is client -> forward, downlink forward -> client)
    and the NAT table: mappings open now, opened and expired so far."""

    uplink: DirectionStats
    downlink: DirectionStats
    mappings: int = 0
    mappings_opened: int = 0
    mappings_expired: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RelayStats:
        """The inverse of ``to_json``; unknown keys are ignored."""
        known = {f.name for f in fields(DirectionStats)}
        dirs = {
            d: DirectionStats(**{k: v for k, v in data[d].items() if k in known})
            for d in ("uplink", "downlink")
        }
        return cls(
            **dirs,
            mappings=int(data.get("mappings", 0)),
            mappings_opened=int(data.get("mappings_opened", 0)),
            mappings_expired=int(data.get("mappings_expired", 0)),
        )


def _percentiles(values: deque[float], scale: float) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    a = np.array(values)
    p50, p99 = np.percentile(a, (50, 99))
    return float(p50) * scale, float(p99) * scale, float(a.max()) * scale


def _median(values: deque[float]) -> float:
    return float(np.median(np.array(values))) if values else 0.0


class Recorder:
    """Counts what one direction receives, sends and drops (relay process only)."""

    def __init__(self, window: int = 4096) -> None:
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.drops: Counter[str] = Counter()
        self.delay: deque[float] = deque(maxlen=window)
        self.queue_delay: deque[float] = deque(maxlen=window)
        self.late: deque[float] = deque(maxlen=window)
        self.read_lag: deque[float] = deque(maxlen=window)
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0

    def arrived(self, size: int, read_lag: float) -> None:
        self.packets_in += 1
        self.bytes_in += size
        self.read_lag.append(read_lag)

    def refused(self, reason: str, count: int = 1) -> None:
        self.drops[reason] += count

    def dropped(self, drops: list[Drop]) -> None:
        for d in drops:
            self.drops[d.reason] += 1

    def sent(self, packet: Packet, actual: float) -> None:
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
        self.packets_out -= 1
        self.bytes_out -= packet.size
        self.drops["send"] += 1

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - 1.0:
            self._sent_bytes -= self._sent.popleft()[1]

    def snapshot(self, now: float, origin: float | None = None) -> DirectionStats:
        self._trim(now)
        late = _percentiles(self.late, 1e6)
        lag = _percentiles(self.read_lag, 1e6)
        return DirectionStats(
            packets_in=self.packets_in,
            bytes_in=self.bytes_in,
            packets_out=self.packets_out,
            bytes_out=self.bytes_out,
            drops=dict(self.drops),
            queue_delay_p50_ms=_median(self.queue_delay) * 1e3,
            delay_p50_ms=_median(self.delay) * 1e3,
            rate_bps=self._sent_bytes * 8.0,
            late_p50_us=late[0],
            late_p99_us=late[1],
            late_max_us=late[2],
            read_lag_p50_us=lag[0],
            read_lag_p99_us=lag[1],
            read_lag_max_us=lag[2],
            origin=origin,
        )
