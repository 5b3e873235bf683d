"""GCC's loss-based controller (GCC draft, section 6; libwebrtc's classic rules).

Loss is counted over at least ``min_packets`` reported packets and
``min_interval`` seconds (libwebrtc's classic rule reads the loss fraction of
receiver reports, about one a second): bursty loss (5g-congested: Gilbert-Elliott,
0.7 % on average in bursts of about three) put 3 of 20 packets in one window
and read as 15 %, and each such window cut the rate. Under 2 % the
rate grows 8 % a second; above 10 % it is cut to ``(1 - loss / 2)`` of what
was being sent, at most once per ``300 ms + rtt``; in between it holds.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

LOW_LOSS = 0.02
HIGH_LOSS = 0.10


class LossBasedControl:
    """The loss-based rate in bits/s."""

    def __init__(
        self,
        *,
        initial: float,
        min_rate: float,
        max_rate: float,
        min_packets: int = 20,
        min_interval: float = 0.5,
    ) -> None:
        self.rate = initial
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.min_packets = min_packets
        self.min_interval = min_interval
        self._window_start: float | None = None
        self.loss = 0.0  # the last loss fraction measured
        self._lost = 0
        self._total = 0
        self._last_update: float | None = None
        self._last_decrease: float | None = None

    def update(self, lost: int, total: int, current: float, rtt: float, now: float) -> float:
        """Count ``lost`` of ``total`` reported packets; ``current`` is the rate in use."""
        self._lost += lost
        self._total += total
        if self._window_start is None:
            self._window_start = now
        if self._total < self.min_packets or now - self._window_start < self.min_interval:
            return self.rate
        self.loss = self._lost / self._total
        self._lost = self._total = 0
        self._window_start = now
        dt = 0.0 if self._last_update is None else min(now - self._last_update, 1.0)
        self._last_update = now
        if self.loss < LOW_LOSS:
            self.rate = min(self.rate, 1.5 * current + 10_000) * 1.08**dt
        elif self.loss > HIGH_LOSS and (
            self._last_decrease is None or now - self._last_decrease >= 0.300 + rtt
        ):
            self.rate = min(self.rate, current) * (1 - self.loss / 2)
            self._last_decrease = now
            logger.debug("loss %.1f %%: loss-based rate %.2f Mbit/s", self.loss * 100,
                         self.rate / 1e6)
        self.rate = min(max(self.rate, self.min_rate), self.max_rate)
        return self.rate
