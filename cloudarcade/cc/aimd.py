"""GCC's delay-based rate controller: additive/multiplicative increase, multiplicative decrease.

Behaviour after libwebrtc's ``AimdRateControl`` and the GCC draft (5.5): on
over-use the rate drops to ``beta`` × the throughput the receiver saw; on
normal it grows by 8 % a second, or, once it is near the link capacity found at
the last over-use, by about one packet per response time; on under-use it
holds (the queue is draining). The rate never runs far ahead of the
throughput actually acknowledged.
"""

from __future__ import annotations

import enum
import math

from .delay import Usage

BETA = 0.85
_MULTIPLICATIVE_PER_S = 1.08
_PACKET_BITS = 1200 * 8
_ASSUMED_FPS = 30


class RateState(enum.Enum):
    HOLD = "hold"
    INCREASE = "increase"
    DECREASE = "decrease"


class LinkCapacity:
    """Running mean and variance of the throughput seen at over-use (kbit/s scale)."""

    def __init__(self) -> None:
        self.mean: float | None = None
        self._var = 0.4

    def on_overuse(self, acked: float) -> None:
        kbps = acked / 1000
        if self.mean is None:
            self.mean = kbps
            return
        alpha = 0.05
        self.mean = (1 - alpha) * self.mean + alpha * kbps
        norm = max(self.mean, 1.0)
        self._var = (1 - alpha) * self._var + alpha * (self.mean - kbps) ** 2 / norm
        self._var = min(max(self._var, 0.4), 2.5)

    def std(self) -> float:
        assert self.mean is not None
        return math.sqrt(self._var * self.mean)

    def upper(self) -> float:
        return math.inf if self.mean is None else (self.mean + 3 * self.std()) * 1000

    def lower(self) -> float:
        return 0.0 if self.mean is None else (self.mean - 3 * self.std()) * 1000

    def reset(self) -> None:
        self.mean = None


class AimdRateControl:
    """The delay-based rate in bits/s, updated on each detector verdict."""

    def __init__(self, *, initial: float, min_rate: float, max_rate: float) -> None:
        self.rate = initial
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.state = RateState.INCREASE
        self.capacity = LinkCapacity()
        self._last_change: float | None = None
        self._last_decrease: float | None = None

    def update(
        self, usage: Usage, acked: float | None, rtt: float, now: float, beta: float = BETA
    ) -> float:
        """Apply one verdict; ``acked`` is the measured throughput (bits/s), if known.

        ``beta`` is the decrease factor on over-use (GCC's 0.85 unless the caller
        wants a deeper cut).
        """
        if usage is Usage.OVERUSING:
            self.state = RateState.DECREASE
        elif usage is Usage.UNDERUSING:
            self.state = RateState.HOLD
        elif self.state is not RateState.INCREASE:
            self.state = RateState.INCREASE
            # Restart the clock: the time held or decreasing earns no increase.
            self._last_change = now

        if self.state is RateState.INCREASE:
            self._increase(acked, rtt, now)
        elif self.state is RateState.DECREASE:
            self._decrease(acked, rtt, now, beta)
        self.rate = min(max(self.rate, self.min_rate), self.max_rate)
        return self.rate

    def jump(self, rate: float, now: float) -> None:
        """Set the rate from a capacity measurement (a probe); forget the old capacity."""
        self.capacity.reset()
        self.rate = min(max(rate, self.min_rate), self.max_rate)
        self._last_change = now

    def _increase(self, acked: float | None, rtt: float, now: float) -> None:
        if acked is not None and acked > self.capacity.upper():
            self.capacity.reset()  # the link grew: search multiplicatively again
        dt = 0.0 if self._last_change is None else min(now - self._last_change, 1.0)
        self._last_change = now
        if self.capacity.mean is not None:
            bits_per_frame = self.rate / _ASSUMED_FPS
            packets = max(math.ceil(bits_per_frame / _PACKET_BITS), 1)
            response_time = rtt + 0.100
            step = max(4000.0, bits_per_frame / packets / response_time) * dt
        else:
            step = max(self.rate * (_MULTIPLICATIVE_PER_S**dt - 1), 1000.0 * dt)
        if acked is None:
            self.rate += step
            return
        # Do not run ahead of what is really getting through; never cut here.
        limit = 1.5 * acked + 10_000
        if self.rate < limit:
            self.rate = min(self.rate + step, limit)

    def _decrease(self, acked: float | None, rtt: float, now: float, beta: float) -> None:
        if acked is None:
            self.state = RateState.HOLD
            return
        wait = min(max(rtt, 0.010), 0.200)
        if (
            self._last_decrease is not None
            and now - self._last_decrease < wait
            and acked > self.rate / 2
        ):
            return  # the last decrease has not shown in the feedback yet
        new = beta * acked
        if new > self.rate and self.capacity.mean is not None:
            new = beta * self.capacity.mean * 1000
        new = min(new, self.rate)
        if acked < self.capacity.lower():
            self.capacity.reset()
        self.capacity.on_overuse(acked)
        self.rate = new
        self._last_decrease = now
        self._last_change = now
        self.state = RateState.HOLD
