"""Mapping another clock (a page's ``performance.now()``) onto ``time.monotonic()``.

Each sample is a round trip: read the local clock, ask the other side for its
clock, read the local clock again. The other side's reading fell somewhere in
between, so ``remote - local_midpoint`` is the offset, wrong by at most half
the round trip. The sample with the shortest round trip is the tightest bound
(NTP's and Cristian's rule); its half round trip is the stated uncertainty.

Chromium's ``performance.now()`` counts from a fixed origin on Linux's
CLOCK_MONOTONIC, the clock behind ``time.monotonic()``, so the offset is
constant: the bench estimates it before and after measuring and reports the
change as drift (expected within the uncertainty).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClockOffset:
    """``remote_seconds - offset`` is the same instant on the local clock.

    ``uncertainty`` is the half round trip of the best sample (seconds): the
    true offset lies within ``offset ± uncertainty``.
    """

    offset: float
    uncertainty: float
    samples: int

    def to_local(self, remote_seconds: float) -> float:
        return remote_seconds - self.offset

    def to_dict(self) -> dict[str, float | int]:
        return {"offset_s": self.offset, "uncertainty_ms": self.uncertainty * 1000,
                "samples": self.samples}


@dataclass
class ClockMapping:
    """Collects round-trip samples; :meth:`estimate` gives the best offset so far."""

    _best: tuple[float, float] | None = None  # (round trip, offset)
    _count: int = 0
    rejected: int = field(default=0)

    def add(self, local_before: float, remote: float, local_after: float) -> None:
        """One round trip: local clock, the other clock (both in seconds), local clock."""
        round_trip = local_after - local_before
        if round_trip < 0:
            self.rejected += 1  # the local clock went backwards: not a monotonic clock
            return
        offset = remote - (local_before + local_after) / 2
        self._count += 1
        if self._best is None or round_trip < self._best[0]:
            self._best = (round_trip, offset)

    def estimate(self) -> ClockOffset:
        """The offset of the shortest round trip; ValueError before any sample."""
        if self._best is None:
            raise ValueError("no clock samples: the other side never answered")
        round_trip, offset = self._best
        return ClockOffset(offset=offset, uncertainty=round_trip / 2, samples=self._count)
