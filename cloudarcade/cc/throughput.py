"""What the receiver got: acknowledged bitrate and queueing delay, from feedback.

``AckedBitrate`` sums the bytes of packets that arrived within a sliding
window of receiver time. ``QueueingDelay`` takes each packet's one-way delay
(receiver clock minus sender clock, so offset by an unknown constant) and
subtracts the smallest one seen over a long window: what is left is the time
spent in queues.
"""

from __future__ import annotations

from collections import deque

from .history import PacketResult


class AckedBitrate:
    """Bits per second that arrived over the last ``window`` seconds of arrivals."""

    def __init__(self, window: float = 0.300) -> None:
        if window <= 0:
            raise ValueError(f"acked bitrate window {window} s: expected > 0")
        self.window = window
        self._arrivals: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._first: float | None = None

    def update(self, results: list[PacketResult]) -> None:
        for result in sorted(
            (r for r in results if r.arrival is not None), key=lambda r: r.arrival or 0.0
        ):
            assert result.arrival is not None
            if self._first is None:
                self._first = result.arrival
            self._arrivals.append((result.arrival, result.size))
            self._bytes += result.size
        if self._arrivals:
            latest = self._arrivals[-1][0]
            while self._arrivals and self._arrivals[0][0] < latest - self.window:
                self._bytes -= self._arrivals.popleft()[1]

    @property
    def bitrate(self) -> float | None:
        """None until a full window of arrivals has been seen."""
        if self._first is None or not self._arrivals:
            return None
        if self._arrivals[-1][0] - self._first < self.window:
            return None
        return self._bytes * 8 / self.window


class QueueingDelay:
    """The standing queue: the smallest one-way delay of the latest feedback packet,
    above the minimum of the last ``window`` seconds.

    The smallest of a batch (a feedback interval of packets), not the latest: jitter delays
    some packets, a queue delays all of them.
    """

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._minima: deque[tuple[float, float]] = deque()  # (send time, delay), increasing
        self.delay = 0.0

    def update(self, results: list[PacketResult]) -> None:
        smallest: float | None = None
        for result in results:
            if result.arrival is None:
                continue
            owd = result.arrival - result.send_time
            while self._minima and self._minima[-1][1] >= owd:
                self._minima.pop()
            self._minima.append((result.send_time, owd))
            while self._minima[0][0] < result.send_time - self.window:
                self._minima.popleft()
            smallest = owd if smallest is None else min(smallest, owd)
        if smallest is not None:
            self.delay = max(smallest - self._minima[0][1], 0.0)
