"""The bottleneck: a queue served at a fixed rate or by a Mahimahi trace.

The queue lives inside the link stage because that is where packets wait: a
stage interface with push/pop has no back-pressure, so a separate queue stage
could not know when the link is free.
"""

from __future__ import annotations

import bisect
import math
from abc import abstractmethod
from typing import Any

from .packet import Packet
from .queue import DropTail, Queue
from .stage import Stage
from .trace import OPPORTUNITY_BYTES, Trace, load_trace

#: IPv4 + UDP headers: the wire carries them, the relay only sees the payload.
DEFAULT_OVERHEAD = 28


class LinkStage(Stage):
    """Common part: queue admission, AQM drop collection, finished packets."""

    def __init__(self, queue: Queue | None, overhead: int) -> None:
        super().__init__()
        self.queue = queue if queue is not None else DropTail()
        self.overhead = overhead
        self._ready: list[Packet] = []

    @abstractmethod
    def _advance(self, now: float) -> None:
        """Serve the queue up to ``now``."""

    def _dequeue(self, t: float) -> Packet | None:
        packet = self.queue.dequeue(t)
        if self.queue.dropped:
            for p in self.queue.dropped:
                self.drop(p, "queue", t)
            self.queue.dropped.clear()
        return packet

    def push(self, packet: Packet, now: float) -> None:
        self._advance(now)
        if not self.queue.enqueue(packet, now):
            self.drop(packet, "queue", now)
            return
        self._advance(now)

    def pop_ready(self, now: float) -> list[Packet]:
        self._advance(now)
        ready, self._ready = self._ready, []
        return ready


class RateStage(LinkStage):
    """A link of ``rate_bps``: each packet takes (size + overhead) * 8 / rate to send."""

    def __init__(
        self, rate_bps: float, queue: Queue | None = None, overhead: int = DEFAULT_OVERHEAD
    ) -> None:
        super().__init__(queue, overhead)
        if rate_bps <= 0:
            raise ValueError(f"rate must be > 0 bits/s, got {rate_bps}")
        self.rate_bps = rate_bps
        self._busy_until = -math.inf
        self._current: Packet | None = None
        self._finish = 0.0

    def _advance(self, now: float) -> None:
        while True:
            if self._current is not None:
                if self._finish > now:
                    return
                self._current.time = self._finish
                self._ready.append(self._current)
                self._busy_until = self._finish
                self._current = None
            head = self.queue.head_time()
            if head is None:
                return
            # Service starts when the link frees up (or at arrival if it was idle).
            start = max(self._busy_until, head)
            packet = self._dequeue(start)
            if packet is None:
                continue
            self._finish = start + (packet.size + self.overhead) * 8.0 / self.rate_bps
            packet.queue_delay += self._finish - start
            self._current = packet

    def next_wakeup(self) -> float | None:
        if self._ready:
            return self._ready[0].time
        return self._finish if self._current is not None else None


class TraceStage(LinkStage):
    """A link whose capacity follows a Mahimahi trace, looped.

    At each opportunity up to 1500 bytes leave; a packet larger than what is
    left continues in the next opportunity (as Mahimahi's packet in transit);
    bytes an opportunity does not use are lost with it. The trace starts at
    ``origin`` (default: the first push).
    """

    def __init__(
        self,
        trace: Trace,
        queue: Queue | None = None,
        overhead: int = DEFAULT_OVERHEAD,
        origin: float | None = None,
    ) -> None:
        super().__init__(queue, overhead)
        self.trace = trace
        self._times = trace.times_ms
        self._period = trace.period_ms
        self.origin = origin
        self._cycle = 0
        self._idx = 0
        self._current: Packet | None = None
        self._remaining = 0
        self._start = 0.0

    @property
    def clock_origin(self) -> float | None:
        return self.origin

    def _opp_time(self) -> float:
        assert self.origin is not None
        return self.origin + (self._cycle * self._period + self._times[self._idx]) / 1000.0

    def _skip_to(self, now: float) -> None:
        """Point at the first opportunity at or after ``now`` (idle link: nothing to send)."""
        assert self.origin is not None
        if self._opp_time() >= now:
            return
        rel = (now - self.origin) * 1000.0
        cycle = int(rel // self._period)
        idx = bisect.bisect_left(self._times, rel - cycle * self._period)
        if idx == len(self._times):
            cycle, idx = cycle + 1, 0
        self._cycle, self._idx = cycle, idx
        # Float rounding can leave us one opportunity short; step until correct.
        while self._opp_time() < now:
            self._step()

    def _step(self) -> None:
        self._idx += 1
        if self._idx == len(self._times):
            self._idx = 0
            self._cycle += 1

    def _advance(self, now: float) -> None:
        if self.origin is None:
            self.origin = now
        while True:
            if self._current is None and not len(self.queue):
                self._skip_to(now)
                return
            t = self._opp_time()
            if t > now:
                return
            budget = OPPORTUNITY_BYTES
            while budget > 0:
                if self._current is None:
                    self._current = self._dequeue(t)
                    if self._current is None:
                        break
                    self._remaining = self._current.size + self.overhead
                    self._start = t
                used = min(budget, self._remaining)
                budget -= used
                self._remaining -= used
                if self._remaining == 0:
                    self._current.time = t
                    self._current.queue_delay += t - self._start
                    self._ready.append(self._current)
                    self._current = None
            self._step()

    def next_wakeup(self) -> float | None:
        if self._ready:
            return self._ready[0].time
        if self._current is not None or len(self.queue):
            return self._opp_time()
        return None


def create_link(name: str, *, queue: Queue | None = None, **opts: Any) -> LinkStage:
    """A bottleneck by name: ``rate`` (``rate_mbps`` or ``rate_bps``) or ``trace``
    (``trace``: a path or a loaded Trace); ``overhead`` bytes per packet (28)."""
    overhead = int(opts.get("overhead", DEFAULT_OVERHEAD))
    if name == "rate":
        bps = float(opts["rate_bps"]) if "rate_bps" in opts else float(opts["rate_mbps"]) * 1e6
        return RateStage(bps, queue, overhead)
    if name == "trace":
        tr = opts["trace"]
        trace = tr if isinstance(tr, Trace) else load_trace(tr)
        return TraceStage(trace, queue, overhead, opts.get("origin"))
    raise ValueError(f"unknown link {name!r}; known: rate, trace")
