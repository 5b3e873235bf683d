"""Outages: windows in which the link carries nothing (handovers, blockage).

Packets that arrive during an outage are dropped with reason ``"outage"``.
Times are relative to ``origin`` (default: the first push).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .packet import Packet
from .rng import BlockDraws
from .stage import PassStage


@dataclass(frozen=True)
class Blackout:
    """A scheduled outage: from ``start`` for ``duration`` seconds, repeating every
    ``period`` seconds when given."""

    start: float
    duration: float
    period: float | None = None

    def covers(self, rel: float) -> bool:
        if rel < self.start:
            return False
        if self.period is None:
            return rel < self.start + self.duration
        return (rel - self.start) % self.period < self.duration


class OutageStage(PassStage):
    """Drops packets inside scheduled blackouts or random ones.

    Random outages start after exponential gaps of mean ``mean_interval`` seconds
    (a Poisson process, e.g. handovers) and last ``duration`` seconds each.
    """

    def __init__(
        self,
        blackouts: list[Blackout] | None = None,
        *,
        mean_interval: float | None = None,
        duration: float = 0.0,
        draws: BlockDraws | None = None,
        origin: float | None = None,
    ) -> None:
        super().__init__()
        self.blackouts = list(blackouts or [])
        if mean_interval is not None and (mean_interval <= 0 or draws is None):
            raise ValueError("random outages need mean_interval > 0 and a random stream")
        self.mean_interval = mean_interval
        self.duration = duration
        self.draws = draws
        self.origin = origin
        self._next_start = 0.0
        self._next_end = -1.0
        if mean_interval is not None:
            self._schedule(0.0)

    @property
    def clock_origin(self) -> float | None:
        return self.origin

    def _schedule(self, after: float) -> None:
        assert self.draws is not None and self.mean_interval is not None
        gap = -self.mean_interval * math.log(1.0 - self.draws.uniform())
        self._next_start = after + gap
        self._next_end = self._next_start + self.duration

    def in_outage(self, now: float) -> bool:
        """Whether ``now`` falls in an outage; calls must not go back in time."""
        if self.origin is None:
            self.origin = now
        rel = now - self.origin
        if any(b.covers(rel) for b in self.blackouts):
            return True
        if self.mean_interval is None:
            return False
        while rel >= self._next_end:
            self._schedule(self._next_end)
        return rel >= self._next_start

    def push(self, packet: Packet, now: float) -> None:
        if self.in_outage(now):
            self.drop(packet, "outage", now)
        else:
            packet.time = now
            self._ready.append(packet)
