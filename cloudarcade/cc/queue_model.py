"""The queue a packet sent now would meet: the latest feedback, carried forward.

Feedback is late by the queue it reports on: a packet stuck behind a capacity
drop is reported only when it gets out, so the queueing delay that feedback
shows trails the real one by that queue plus a round trip. On the dip profile
(20 → 3 Mbit/s while sending 8) the real queue grows by 1.7 ms every ms and
the reported one showed 12 ms when the real one was 176.

The sender knows more than the feedback: every byte it sent after the newest
reported packet is still ahead of a packet sent now. A fluid model of the
bottleneck says the newest reported packet (sent at ``s``, queued ``q``) got
out at ``s + q`` (less the fixed path delay), the ``B`` bytes sent after it
drain behind it at the link's delivery rate ``C``, and a packet sent ``now``
waits ``max(0, s + q + B / C - now)``. While the link keeps up, ``C`` is the
rate the sender sends at and the prediction is just ``q``; once a queue
forms, packets arrive back to back and ``C`` is the capacity.

``C`` is the link's capacity as the packet trains show it (the median of
recent trains: a frame leaves as a burst and arrives spread at the
bottleneck's rate), or the delivery rate over the last ``window`` of arrivals
if that is higher. Not the delivery rate alone: while the link keeps up that
is only what was sent, and a bigger frame after a smaller one would read as a
queue (and jitter on 5g-congested, as a queue that never drains). Where the
last two long trains are both much slower, they win: frames behind a slower
bottleneck arrive spread out at its rate in the first feedback after a drop,
while the median still holds the old rate. Before any train (a light game's
one-packet frames never make one), the delivery rate stands in only while a
queue stands: then packets arrive back to back at the link's rate.
"""

from __future__ import annotations

import bisect
import statistics
from collections import deque

from .history import PacketResult
from .throughput import AckedBitrate

_HISTORY_S = 2.0  # sender log kept this long: feedback for older packets is useless
# The queueing figure feedback gives (one-way delay above its 10 s minimum) reads
# jitter as queue: 15-25 ms on 5g-congested (8 ms of correlated jitter) with no
# queue at all. What counts is the excess over its own median of the last
# ``_FLOOR_WINDOW_S``: a queue the controller lets stand for seconds is a
# failure anyway, and the delay-based detector handles a slow build-up.
_FLOOR_WINDOW_S = 10.0
_TRAIN_TRUSTED_BELOW = 0.75  # the newest trains count below this fraction of the capacity
# Two of our receiver's feedback intervals (cc/feedback.py): jitter on the way
# there and back (5g-congested: 8 ms each way) moves the lag by more than one.
_SILENCE_MARGIN_S = 0.050
# A standing queue of at least this much: the packets arrive back to back, so
# their delivery rate is the link's.
_QUEUED_S = 0.005


class QueuePredictor:
    """Sans-I/O: ``on_sent(size, now)`` per packet, ``on_feedback`` per report,
    ``predict(now)`` in seconds."""

    def __init__(self, window: float = 0.100) -> None:
        self.delivery = AckedBitrate(window)
        self._times: deque[float] = deque()  # send times, increasing
        self._totals: deque[int] = deque()  # bytes sent up to and including that packet
        self._total = 0
        # Newest reported packet: (send time, queueing, bytes sent up to it).
        self._anchor: tuple[float, float, int] | None = None
        self._train_rate: float | None = None
        self._warning: float | None = None
        self._capacity: float | None = None
        self._readings: deque[tuple[float, float]] = deque()  # (time, queueing)
        self.floor = 0.0
        self._lags: deque[tuple[float, float]] = deque()  # (time, feedback lag)
        self.lag = 0.0  # the usual time from sending a packet to hearing of it

    def on_sent(self, size: int, now: float) -> None:
        self._total += size
        self._times.append(now)
        self._totals.append(self._total)
        while self._times and self._times[0] < now - _HISTORY_S:
            self._times.popleft()
            self._totals.popleft()

    def on_feedback(
        self,
        results: list[PacketResult],
        queueing: float,
        now: float,
        *,
        capacity: float | None,
        train_rate: float | None,
        warning: float | None = None,
    ) -> None:
        """``queueing``: the standing queue the feedback shows (seconds);
        ``capacity``: the trains' median capacity (bits/s), if known; ``train_rate``:
        the newest trains' rate (bits/s) where this feedback brings news of one
        (:attr:`DispersionProbe.confirmed`); ``warning``: the newest train's rate
        where it may be news of a drop (:attr:`DispersionProbe.warning`), which
        only :meth:`predict_warned` believes."""
        self.delivery.update(results)
        self._capacity = capacity
        self._train_rate = train_rate
        self._warning = warning
        newest = max(
            (r.send_time for r in results if r.arrival is not None), default=None
        )
        if newest is None or (self._anchor is not None and newest <= self._anchor[0]):
            return
        self._lags.append((now, now - newest))
        while self._lags[0][0] < now - _FLOOR_WINDOW_S:
            self._lags.popleft()
        self.lag = statistics.median(lag for _, lag in self._lags)
        self._readings.append((newest, queueing))
        while self._readings[0][0] < newest - _FLOOR_WINDOW_S:
            self._readings.popleft()
        self.floor = statistics.median(q for _, q in self._readings)
        excess = max(queueing - self.floor, 0.0)
        self._anchor = (newest, excess, self._sent_up_to(newest))

    def _sent_up_to(self, send_time: float) -> int:
        """Bytes sent up to and including the packet sent at ``send_time``."""
        i = bisect.bisect_right(self._times, send_time)
        if i == 0:
            return self._totals[0] if self._totals else self._total
        return self._totals[i - 1]

    @property
    def idle(self) -> bool:
        """No packet train has measured the link and nothing stands in its queue: a
        light game (one-packet frames) on a link that keeps up. What was delivered
        is then only what we sent, and a silence between sparse reports is no
        stall: read as the drain rate, a light game's 50 kbit/s made its next
        1.5 kB frame a 240 ms queue on an idle link (the over-use that followed
        cut the target to 0.1 Mbit/s, and the ladder to 320x180), and Chromium's
        reports every 150 ms at that rate read as stalls that held frames back."""
        return self._capacity is None and self.standing < _QUEUED_S

    @property
    def rate(self) -> float | None:
        """The rate the queue drains at (bits/s), or None before enough feedback
        (or while :attr:`idle`)."""
        rate = None if self.idle else self.delivery.bitrate
        if self._capacity is not None:
            rate = self._capacity if rate is None else max(rate, self._capacity)
        train = self._train_rate
        if train is not None and (rate is None or train < _TRAIN_TRUSTED_BELOW * rate):
            return train
        return rate

    @property
    def standing(self) -> float:
        """The queue the latest feedback showed, above its usual level (seconds)."""
        return 0.0 if self._anchor is None else self._anchor[1]

    def predict(self, now: float) -> float:
        """Seconds of queue ahead of a packet sent at ``now`` (0 before any feedback).

        The larger of the fluid model's figure and the silence: when nothing has
        been heard of for 50 ms longer than usual, the path is
        stalled (a handover, a blockage) and everything sent since is queued
        behind it; the fluid model, fed only by feedback, would not notice.
        """
        return self._predict(now, self.rate)

    def predict_warned(self, now: float) -> float:
        """:meth:`predict`, or more if the newest train, not yet confirmed by a
        second, is news of a drop: the figure to hold frames back by (a frame held
        back costs one frame interval; a rate cut on jitter costs seconds)."""
        rate = self.rate
        warning = self._warning
        predicted = self._predict(now, rate)
        if warning is not None and rate is not None and warning < _TRAIN_TRUSTED_BELOW * rate:
            predicted = max(predicted, self._predict(now, warning))
        return predicted

    def _predict(self, now: float, rate: float | None) -> float:
        if self._anchor is None:
            return 0.0
        sent_at, queueing, total_then = self._anchor
        behind = self._total - total_then
        drain = 0.0 if rate is None or rate <= 0 else behind * 8 / rate
        silence = 0.0 if self.idle else now - sent_at - self.lag - _SILENCE_MARGIN_S
        return max(sent_at + queueing + drain - now, silence, 0.0)
