"""A GCC-style controller: delay-based and loss-based estimates, the smaller wins.

Per feedback: packets (in send order) go through the inter-arrival grouping,
the trendline and the over-use detector; the AIMD controller moves the
delay-based rate on the verdict (an over-use anywhere in the batch counts);
the loss-based controller counts the packets reported lost. The target is the
smallest of the two and, where a receiver sends it, REMB.
"""

from __future__ import annotations

import logging

from .aimd import BETA, AimdRateControl
from .base import CcState, CongestionController, register_controller
from .delay import InterArrival, OveruseDetector, TrendlineEstimator, Usage
from .history import PacketResult
from .loss import LOW_LOSS, LossBasedControl
from .probe import DispersionProbe
from .queue_model import QueuePredictor
from .throughput import AckedBitrate, QueueingDelay

logger = logging.getLogger(__name__)

_DEFAULT_RTT = 0.100
_REMB_TIMEOUT_S = 5.0  # a REMB older than this no longer caps the target
# Jump to a measured capacity at most this often, and by at most this factor:
# a train compressed by a burst of scheduling must not fling the rate upwards.
_PROBE_INTERVAL_S = 0.250
_PROBE_MAX_STEP = 1.5
_PROBE_MAX_QUEUEING_S = 0.010
# Jump only while the trains show this much headroom over the rate. Short trains
# over a link that delivers in bursts (a Mahimahi trace's opportunities) read
# high: on dip's 3 Mbit/s the probe jumped 2.3 -> 3.0 Mbit/s, over what the link
# carries for our packet sizes, and a 45 ms queue stood until the next decrease.
_PROBE_MIN_HEADROOM = 1.5
# The trendline alone reads correlated jitter (5g-congested: 8 ms) as over-use
# and walked the rate down to 0.5 Mbit/s on a 151 Mbit/s link; a decrease also
# needs a standing queue of this much above the queueing figure's usual level
# (jitter alone keeps that at 15-25 ms there; a real queue gets past it within
# a frame or two).
_OVERUSE_MIN_QUEUEING_S = 0.010
# On over-use with a standing queue, cut deep enough to drain it within this
# long (the rate below the link is what drains it), between GCC's 0.85 and 0.5:
# a queue built up by a capacity drop is gone in about half a second instead
# of the several seconds that 15 % headroom takes.
_DRAIN_S = 0.5
_MIN_BETA = 0.5
# Over-use without waiting for the trendline: the queue a packet sent now would
# meet (the feedback carried forward by what was sent since, cc/queue_model.py)
# is past this (above its usual level: jitter does not count). The trendline
# needs a dozen packet groups, and by then a 20 -> 3 Mbit/s drop has queued
# 300 ms. At 30 ms, the additive increase later in dip's 3 Mbit/s walked the
# target past the link and a 44-50 ms queue (a frame's own 13 ms included)
# stood until this fired; at 20 ms it stayed under 30 (drain 0.96 and 1.26 s
# against 3.2 s and never), with no loss of rate on 5g-congested's jitter
# (two side-by-side runs; docs/congestion.md).
_FAST_OVERUSE_S = 0.020


class GccController(CongestionController):
    """Google Congestion Control, send side (transport-cc feedback)."""

    name = "gcc"

    def __init__(self, *, initial: float, min_rate: float, max_rate: float) -> None:
        super().__init__(initial=initial, min_rate=min_rate, max_rate=max_rate)
        self.inter_arrival = InterArrival()
        self.trendline = TrendlineEstimator()
        self.detector = OveruseDetector()
        self.aimd = AimdRateControl(initial=initial, min_rate=min_rate, max_rate=max_rate)
        self.loss = LossBasedControl(initial=initial, min_rate=min_rate, max_rate=max_rate)
        self.acked = AckedBitrate()
        self.queueing = QueueingDelay()
        # Its median is the capacity; its newest trains are news of a drop: one that
        # arrived evenly spaced at a slower rate, or two in a row both slow (on
        # 5g-congested, jitter spreads a train in clumps now and then).
        self.probe = DispersionProbe(confirm=2)
        self.queue_model = QueuePredictor()
        self._last_probe_jump: float | None = None
        self.rtt = _DEFAULT_RTT
        self._remb: tuple[float, float] | None = None  # (bitrate, received at)
        self._now = 0.0
        self._logged = 0.0
        # Once transport-cc feedback flows, REMB no longer caps the target: the
        # receiver's estimate (aiortc's, abs-send-time based) lags our own.
        self._transport_cc = False

    def on_rtt(self, rtt: float, now: float) -> None:
        if rtt > 0:
            self.rtt = 0.875 * self.rtt + 0.125 * rtt

    def on_sent(self, size: int, now: float) -> None:
        self.queue_model.on_sent(size, now)

    def queue_ahead(self, now: float) -> float:
        return self.queue_model.predict_warned(now)

    @property
    def standing_queue(self) -> float:
        return self.queue_model.standing

    def on_remb(self, bitrate: float, now: float) -> None:
        self._remb = (bitrate, now)
        self._now = now

    def on_feedback(self, results: list[PacketResult], now: float) -> None:
        self._now = now
        self._transport_cc = True
        if not results:
            return
        results = sorted(results, key=lambda r: r.seq)
        self.acked.update(results)
        self.queueing.update(results)
        received = [r for r in results if r.arrival is not None]
        if received:
            # Feedback arrives about one RTT (plus the receiver's hold-off) after the
            # newest packet it reports: an upper bound when no RTCP RTT is known.
            self.on_rtt(now - max(r.send_time for r in received), now)
        overuse = False
        for result in received:
            assert result.arrival is not None
            delta = self.inter_arrival.add(result.send_time, result.arrival, result.size)
            if delta is None:
                continue
            trend = self.trendline.update(delta)
            usage = self.detector.detect(trend, delta.send_delta, now)
            overuse = overuse or usage is Usage.OVERUSING
        self.probe.update(results)
        self.queue_model.on_feedback(
            results,
            self.queueing.delay,
            now,
            capacity=self.probe.estimate,
            train_rate=self.probe.confirmed,
            warning=self.probe.warning,
        )
        usage = Usage.OVERUSING if overuse else self.detector.usage
        if (
            usage is Usage.OVERUSING
            and self.queueing.delay - self.queue_model.floor < _OVERUSE_MIN_QUEUEING_S
        ):
            usage = Usage.NORMAL
        ahead = self.queue_model.predict(now)
        acked = self.acked.bitrate
        if ahead > _FAST_OVERUSE_S:
            usage = Usage.OVERUSING
            # The 300 ms window still holds the old rate: the recent delivery rate is the link's.
            delivery = self.queue_model.rate
            if delivery is not None:
                acked = delivery if acked is None else min(acked, delivery)
        before = self.aimd.rate
        queue = max(self.queueing.delay, ahead)
        beta = min(BETA, max(_MIN_BETA, 1 - queue / _DRAIN_S))
        self.aimd.update(usage, acked, self.rtt, now, beta)
        if self.aimd.rate < before:
            logger.debug(
                "delay-based decrease %.2f -> %.2f Mbit/s: trend %.1f, threshold %.1f, "
                "acked %s, queueing %.1f ms, ahead %.1f ms", before / 1e6, self.aimd.rate / 1e6,
                self.trendline.trend, self.detector.threshold, _mbit(acked),
                self.queueing.delay * 1000, ahead * 1000,
            )
        if usage is Usage.NORMAL:
            self._follow_probe(now)
        self.loss.update(
            len(results) - len(received), len(results), self.target, self.rtt, now
        )
        if now - self._logged >= 1.0:
            self._logged = now
            logger.debug(
                "gcc: target %.2f, delay-based %.2f (%s), loss-based %.2f (loss %.1f %%), "
                "acked %s, probe %s, trend %.1f / threshold %.1f, queueing %.1f ms, rtt %.0f ms",
                self.target / 1e6, self.aimd.rate / 1e6, self.aimd.state.value,
                self.loss.rate / 1e6, self.loss.loss * 100, _mbit(self.acked.bitrate),
                _mbit(self.probe.estimate), self.trendline.trend, self.detector.threshold,
                self.queueing.delay * 1000, self.rtt * 1000,
            )

    def _follow_probe(self, now: float) -> None:
        """Climb towards the capacity the packet trains show, while queues stay empty."""
        capacity = self.probe.estimate
        if (
            capacity is None
            or self.queueing.delay > _PROBE_MAX_QUEUEING_S
            or self.loss.loss >= LOW_LOSS
        ):
            return
        if self._last_probe_jump is not None and now - self._last_probe_jump < _PROBE_INTERVAL_S:
            return
        if capacity < _PROBE_MIN_HEADROOM * self.aimd.rate:
            return  # near the link: additive increase finds the rest without overshooting
        goal = min(0.85 * capacity, _PROBE_MAX_STEP * self.aimd.rate)
        if goal > 1.1 * self.aimd.rate:
            self.aimd.jump(goal, now)
            self.loss.rate = max(self.loss.rate, goal)
            self._last_probe_jump = now

    def _remb_cap(self) -> float | None:
        if (
            self._transport_cc
            or self._remb is None
            or self._now - self._remb[1] > _REMB_TIMEOUT_S
        ):
            return None
        return self._remb[0]

    @property
    def target(self) -> float:
        rate = min(self.aimd.rate, self.loss.rate)
        remb = self._remb_cap()
        if remb is not None:
            rate = min(rate, remb)
        return min(max(rate, self.min_rate), self.max_rate)

    def state(self) -> CcState:
        target = self.target
        return CcState(
            target=target,
            estimate=self.probe.estimate or target,
            queueing_delay=self.queueing.delay,
            loss=self.loss.loss,
            usage=self.detector.usage.value,
            predicted_queueing=self.queue_model.predict_warned(self._now),
            standing_queueing=self.standing_queue,
        )


def _mbit(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}"


register_controller("gcc", GccController)
