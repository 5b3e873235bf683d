"""Link capacity from the dispersion of packet trains: each frame is a free probe.

A video frame leaves as a burst of packets; a bottleneck slower than the
burst spreads them out, so ``bytes after the first / arrival spread`` measures
its capacity (packet-pair dispersion). libwebrtc sends padding probes to learn
the same thing after a drop; here every frame of a few packets is a probe, so
the controller can climb back quickly once the link recovers, instead of the
8 %/s of multiplicative increase.

The estimate is the median of the last ``window`` trains, which discounts a
train compressed or stretched by jitter. A train spread by the sender's own
pacer reads low, never high.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque

from .history import PacketResult

# Packets sent closer than this are one train.
_TRAIN_GAP_S = 0.001
# A spread under 1 ms is at the limit of transport-cc's 250 µs ticks.
_MIN_SPREAD_S = 0.001
# Gaps of at least this many packets with a standard deviation under a quarter
# of their mean count as evenly spaced.
_EVEN_CV = 0.25
_EVEN_MIN_PACKETS = 6
# A looser test, for a warning rather than a verdict: a median gap of at least
# half the mean gap. A trace-driven link delivers in opportunities (dip's
# 3 Mbit/s: one every 4 ms, now and then two packets in one), and the train
# that first shows a drop starts with a few packets that got through at the
# old rate; both fail the test above, and waiting for a second train let 25 ms
# more of 8 Mbit/s into a 3 Mbit/s queue (60 ms of it). Jitter on an
# order-keeping path arrives in clumps, most gaps near zero, so its median gap
# is far under the mean; but now and then a jittered train passes (walking
# the rate down on 5g-congested when it counted as a verdict).
_SPACED_MEDIAN = 0.5


class DispersionProbe:
    """Median capacity (bits/s) seen by recent packet trains, or None."""

    def __init__(self, *, min_packets: int = 4, window: int = 9, confirm: int = 2) -> None:
        if min_packets < 2:
            raise ValueError(f"probe train of {min_packets} packets: expected >= 2")
        if not 1 <= confirm <= window:
            raise ValueError(f"confirm {confirm} trains of a window of {window}: "
                             "expected 1 <= confirm <= window")
        self.min_packets = min_packets
        self.confirm = confirm
        self._rates: deque[float] = deque(maxlen=window)
        # The newest train of the last update, unfiltered: a drop shows in it first.
        self.latest: float | None = None
        # Whether its packets arrived evenly spaced, as a bottleneck spaces them
        # (jitter on an order-keeping path arrives in clumps with long gaps).
        self.latest_even = False
        # Whether most of its gaps were near the mean (the looser test).
        self.latest_spaced = False

    def update(self, results: list[PacketResult]) -> None:
        """Add the trains in one feedback's results (sorted by sequence number)."""
        self.latest = None
        self.latest_even = False
        self.latest_spaced = False
        train: list[PacketResult] = []
        for result in results:
            if train and (
                result.seq != train[-1].seq + 1
                or result.send_time - train[-1].send_time > _TRAIN_GAP_S
            ):
                self._measure(train)
                train = []
            train.append(result)
        self._measure(train)

    def _measure(self, train: list[PacketResult]) -> None:
        if len(train) < self.min_packets:
            return
        arrivals = [r.arrival for r in train]
        if any(a is None for a in arrivals):
            return  # a loss inside the train hides how long it took
        first = min(a for a in arrivals if a is not None)
        last = max(a for a in arrivals if a is not None)
        spread = last - first
        if spread < _MIN_SPREAD_S:
            return
        payload = sum(r.size for r in train) - train[0].size
        self.latest = payload * 8 / spread
        times = sorted(a for a in arrivals if a is not None)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Set for every train that becomes ``latest``: a short one after a long one
        # in the same feedback must not inherit the long one's spacing.
        self.latest_even = self.latest_spaced = False
        if len(train) >= _EVEN_MIN_PACKETS:
            mean = statistics.fmean(gaps)
            self.latest_even = statistics.pstdev(gaps, mean) < _EVEN_CV * mean
            self.latest_spaced = statistics.median(gaps) >= _SPACED_MEDIAN * mean
        self._rates.append(self.latest)

    @property
    def confirmed(self) -> float | None:
        """A rate to believe from this update's newest train, news of a drop: its own
        if it arrived evenly spaced, else the fastest of the last ``confirm`` trains
        (every one of them was at most this fast), once there are that many."""
        if self.latest is None:
            return None
        if self.latest_even:
            return self.latest
        if len(self._rates) < self.confirm:
            return None
        return max(itertools.islice(reversed(self._rates), self.confirm))

    @property
    def warning(self) -> float | None:
        """The newest train's rate if it arrived spaced out as a bottleneck spaces
        packets (the looser test): news of a drop that may yet be jitter, worth
        holding frames back for but not cutting the rate."""
        if self.latest is None or not (self.latest_spaced or self.latest_even):
            return None
        return self.latest

    @property
    def estimate(self) -> float | None:
        if len(self._rates) < 3:
            return None
        return statistics.median(self._rates)
