"""GCC's delay-based detector: packet groups, a trendline of queueing delay, over-use.

The behaviour follows libwebrtc's goog_cc (``InterArrivalDelta``,
``TrendlineEstimator``) and the GCC draft (draft-ietf-rmcat-gcc-02): packets
sent within 5 ms form a group; for consecutive groups the growth in one-way
delay is ``arrival delta - send delta``; its running sum, smoothed, is fitted
by least squares over the last 20 groups, and the slope (scaled by the number
of groups and a gain) is compared with an adaptive threshold.

All times are seconds; send times are the sender's clock and arrival times the
receiver's, so only differences within each clock are used.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

GROUP_S = 0.005  # packets sent within this span form one group
_BURST_ARRIVAL_S = 0.005
_MAX_BURST_S = 0.100
_ARRIVAL_RESET_S = 3.0  # an arrival jump this big means the clock or path changed


class Usage(enum.Enum):
    """What the detector concludes about the bottleneck queue."""

    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


@dataclass
class _Group:
    first_send: float
    last_send: float
    first_arrival: float
    last_arrival: float
    size: int


@dataclass(frozen=True)
class GroupDelta:
    """The change between two consecutive packet groups."""

    send_delta: float
    arrival_delta: float
    arrival: float  # the later group's last arrival
    size_delta: int


class InterArrival:
    """Groups packets (fed in send order) and yields deltas between complete groups."""

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None

    def add(self, send_time: float, arrival: float, size: int) -> GroupDelta | None:
        """Add one received packet; returns a delta when it completes a group."""
        current = self._current
        if current is None:
            self._current = _Group(send_time, send_time, arrival, arrival, size)
            return None
        if send_time < current.first_send:
            return None  # reordered across groups: ignore, as libwebrtc does
        if self._belongs(current, send_time, arrival):
            current.last_send = max(current.last_send, send_time)
            current.last_arrival = max(current.last_arrival, arrival)
            current.size += size
            return None
        delta: GroupDelta | None = None
        previous = self._previous
        if previous is not None:
            send_delta = current.last_send - previous.last_send
            arrival_delta = current.last_arrival - previous.last_arrival
            if arrival_delta > _ARRIVAL_RESET_S or arrival_delta < 0:
                self._previous = None
                self._current = _Group(send_time, send_time, arrival, arrival, size)
                return None
            delta = GroupDelta(
                send_delta, arrival_delta, current.last_arrival, current.size - previous.size
            )
        self._previous = current
        self._current = _Group(send_time, send_time, arrival, arrival, size)
        return delta

    @staticmethod
    def _belongs(group: _Group, send_time: float, arrival: float) -> bool:
        if send_time - group.first_send <= GROUP_S:
            return True
        # A burst: packets that arrive together although sent apart were queued
        # behind each other, so they are one group too.
        arrival_delta = arrival - group.last_arrival
        send_delta = send_time - group.last_send
        return (
            arrival_delta - send_delta < 0
            and arrival_delta <= _BURST_ARRIVAL_S
            and arrival - group.first_arrival < _MAX_BURST_S
        )


class TrendlineEstimator:
    """Least-squares slope of the smoothed accumulated delay over recent groups."""

    def __init__(
        self, *, window: int = 20, smoothing: float = 0.9, gain: float = 4.0
    ) -> None:
        self.window = window
        self.smoothing = smoothing
        self.gain = gain
        self._points: deque[tuple[float, float]] = deque(maxlen=window)
        self._accumulated_ms = 0.0
        self._smoothed_ms = 0.0
        self._first_arrival: float | None = None
        self._deltas = 0
        self.trend = 0.0  # modified trend, comparable with the threshold (ms)

    def update(self, delta: GroupDelta) -> float:
        """Add a group delta; returns the modified trend."""
        if self._first_arrival is None:
            self._first_arrival = delta.arrival
        self._deltas = min(self._deltas + 1, 1000)
        self._accumulated_ms += (delta.arrival_delta - delta.send_delta) * 1000
        self._smoothed_ms = (
            self.smoothing * self._smoothed_ms + (1 - self.smoothing) * self._accumulated_ms
        )
        self._points.append(((delta.arrival - self._first_arrival) * 1000, self._smoothed_ms))
        if len(self._points) == self.window:
            slope = _slope(self._points)
            if slope is not None:
                self.trend = min(self._deltas, 60) * slope * self.gain
        return self.trend


def _slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return None if den == 0 else num / den


class OveruseDetector:
    """Compares the trend with a threshold that adapts to it (GCC draft, 5.4)."""

    def __init__(
        self,
        *,
        initial_threshold: float = 12.5,
        k_up: float = 0.0087,
        k_down: float = 0.039,
        overuse_time: float = 0.010,
    ) -> None:
        self.threshold = initial_threshold
        self.k_up = k_up
        self.k_down = k_down
        self.overuse_time = overuse_time
        self.usage = Usage.NORMAL
        self._time_over: float | None = None
        self._count = 0
        self._previous_trend = 0.0
        self._last_update: float | None = None

    def detect(self, trend: float, send_delta: float, now: float) -> Usage:
        """Classify one trend value; ``send_delta`` is the group's send spacing (s)."""
        if trend > self.threshold:
            if self._time_over is None:
                self._time_over = send_delta / 2
            else:
                self._time_over += send_delta
            self._count += 1
            if (
                self._time_over > self.overuse_time
                and self._count > 1
                and trend >= self._previous_trend
            ):
                self._time_over = 0.0
                self._count = 0
                self.usage = Usage.OVERUSING
        elif trend < -self.threshold:
            self._time_over = None
            self._count = 0
            self.usage = Usage.UNDERUSING
        else:
            self._time_over = None
            self._count = 0
            self.usage = Usage.NORMAL
        self._previous_trend = trend
        self._adapt(trend, now)
        return self.usage

    def _adapt(self, trend: float, now: float) -> None:
        if self._last_update is None:
            self._last_update = now
        magnitude = abs(trend)
        if magnitude > self.threshold + 15:
            # A spike (a reroute, a burst): do not let it drag the threshold.
            self._last_update = now
            return
        k = self.k_down if magnitude < self.threshold else self.k_up
        dt_ms = min((now - self._last_update) * 1000, 100.0)
        self.threshold += k * (magnitude - self.threshold) * dt_ms
        self.threshold = min(max(self.threshold, 6.0), 600.0)
        self._last_update = now
