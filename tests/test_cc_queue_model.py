"""The sender's queue prediction, the drop-news trains and the loss window, under a fake clock."""

from __future__ import annotations

import pytest

from cloudarcade.cc.history import PacketResult
from cloudarcade.cc.loss import LossBasedControl
from cloudarcade.cc.probe import DispersionProbe
from cloudarcade.cc.queue_model import QueuePredictor

M = 1_000_000
SIZE = 1200


def steady(
    model: QueuePredictor, *, rate: float, until: float, delay: float = 0.030
) -> list[PacketResult]:
    """Send at ``rate`` with feedback every 25 ms reporting everything ``delay`` old,
    over a link the packet trains show at twice that (as the controller's probe
    would measure it).

    Returns the results fed to the model."""
    fed: list[PacketResult] = []
    interval = SIZE * 8 / rate
    now, seq, pending = 0.0, 0, []
    next_feedback = 0.025
    while now < until:
        model.on_sent(SIZE, now)
        pending.append(PacketResult(seq, SIZE, now, now + 0.015))
        seq += 1
        now += interval
        if now >= next_feedback:
            ready = [r for r in pending if r.send_time <= now - delay]
            pending = [r for r in pending if r.send_time > now - delay]
            if ready:
                model.on_feedback(ready, 0.0, now, capacity=2 * rate, train_rate=None)
                fed += ready
            next_feedback += 0.025
    return fed


def test_a_link_that_keeps_up_predicts_no_queue() -> None:
    model = QueuePredictor()
    steady(model, rate=4 * M, until=2.0)
    assert model.predict(2.0) < 0.005


def test_silence_counts_as_queue() -> None:
    model = QueuePredictor()
    steady(model, rate=4 * M, until=2.0)
    # Keep sending at the same rate, hear nothing: a stalled path (a handover).
    sent = [2.0 + i * 0.0024 for i in range(84)]
    for t in sent[:9]:
        model.on_sent(SIZE, t)
    quiet = model.predict(2.02)
    for t in sent[9:]:
        model.on_sent(SIZE, t)
    stalled = model.predict(2.2)
    assert quiet < 0.005
    assert stalled == pytest.approx(2.2 - 2.0 - model.lag - 0.050, abs=0.03)
    assert stalled > 0.05


def test_a_light_games_small_frames_on_an_idle_link_predict_no_queue() -> None:
    # One packet a frame (no train ever measures the link), 50-650 bytes, at 30 fps;
    # feedback every 150 ms, as Chromium sends it at low rates (50-250 ms); no queue at all.
    model = QueuePredictor()
    sizes = [51, 114, 184, 222, 249, 333, 643, 463]
    now, seq, pending, next_feedback = 0.0, 0, [], 0.1
    worst = 0.0
    for frame in range(300):
        size = 1500 if frame % 30 == 29 else sizes[frame % len(sizes)]  # now and then a big one
        model.on_sent(size, now)
        pending.append(PacketResult(seq, size, now, now + 0.005))
        seq += 1
        if now >= next_feedback:
            # What arrived up to 30 ms ago: the packets sent since are still on their way.
            ready = [r for r in pending if r.send_time <= now - 0.030]
            pending = [r for r in pending if r.send_time > now - 0.030]
            if ready:
                model.on_feedback(ready, 0.0, now, capacity=None, train_rate=None)
            next_feedback = now + (0.14, 0.15, 0.16)[frame % 3]
        if now > 1.0:  # once a few reports have shown how often they come
            worst = max(worst, model.predict(now))
        now += 1 / 30
    assert worst < 0.005
    # A standing queue makes the delivery rate the link's again: it drains at that.
    model.on_feedback([PacketResult(seq, 1200, now, now + 0.040)], 0.030, now + 0.041,
                      capacity=None, train_rate=None)
    assert model.rate is not None


def test_a_slow_train_predicts_the_queue_of_what_was_sent_since() -> None:
    model = QueuePredictor()
    fed = steady(model, rate=8 * M, until=1.0)
    newest = fed[-1].send_time
    # The link now carries 2 Mbit/s: 100 kB sent after the newest reported packet
    # take 400 ms to drain behind it.
    for i in range(84):
        model.on_sent(SIZE, 1.0 + i * 0.0012)
    behind = model._total - model._sent_up_to(newest)
    model.on_feedback([], 0.0, 1.1, capacity=8 * M, train_rate=2 * M)
    assert model.rate == 2 * M
    expected = newest + behind * 8 / (2 * M) - 1.1
    assert model.predict(1.1) == pytest.approx(expected, abs=1e-6)
    # A train only a little slower than the capacity is jitter, not news.
    model.on_feedback([], 0.0, 1.1, capacity=8 * M, train_rate=7 * M)
    assert model.rate == pytest.approx(8 * M, rel=0.02)  # the delivery rate, about


def train(first_seq: int, send: float, gaps: list[float]) -> list[PacketResult]:
    arrivals = [send + 0.02]
    for gap in gaps:
        arrivals.append(arrivals[-1] + gap)
    return [
        PacketResult(first_seq + i, SIZE, send + i * 1e-5, arrival)
        for i, arrival in enumerate(arrivals)
    ]


def test_an_evenly_spaced_slow_train_is_news_at_once_a_clumpy_one_needs_a_second() -> None:
    probe = DispersionProbe(min_packets=4, window=9, confirm=2)
    probe.update(train(0, 0.0, [0.0032] * 7))  # 3 Mbit/s, evenly spaced
    assert probe.latest_even
    assert probe.confirmed == pytest.approx(SIZE * 8 / 0.0032)

    jittered = DispersionProbe(min_packets=4, window=9, confirm=2)
    clumps = [0.0, 0.0, 0.009, 0.0, 0.0, 0.012, 0.0]  # order kept, jitter in clumps
    jittered.update(train(0, 0.0, clumps))
    assert not jittered.latest_even
    assert jittered.confirmed is None
    jittered.update(train(8, 0.0167, [0.001] * 7))  # the next frame arrives fast
    assert jittered.confirmed == pytest.approx(SIZE * 8 / 0.001)


def test_a_short_newest_train_does_not_inherit_an_earlier_trains_spacing() -> None:
    # One feedback: an evenly spaced slow train, then a frame of 4 packets (too short
    # to judge its spacing), fast: the news is the short one, and it is no verdict.
    probe = DispersionProbe(min_packets=4, window=9, confirm=2)
    probe.update(train(0, 0.0, [0.0032] * 7) + train(8, 0.0167, [0.001] * 3))
    assert probe.latest == pytest.approx(SIZE * 8 / 0.001)
    assert not probe.latest_even and not probe.latest_spaced
    assert probe.warning is None


def test_the_train_that_first_shows_a_drop_is_a_warning_at_once() -> None:
    # Three packets got through at 20 Mbit/s, the rest at 3 Mbit/s as a trace-driven
    # link delivers it: one opportunity every 4 ms, now and then two packets in one.
    probe = DispersionProbe(min_packets=4, window=9, confirm=2)
    gaps = [0.0005, 0.0005, 0.004, 0.004, 0.0, 0.004, 0.004, 0.004, 0.004]
    probe.update(train(0, 0.0, gaps))
    assert not probe.latest_even
    assert probe.confirmed is None  # not yet a verdict: one train, unevenly spaced
    assert probe.warning == pytest.approx(SIZE * 8 * 9 / sum(gaps))
    assert probe.warning is not None and probe.warning < 4 * M
    # Clumps (jitter, order kept) are no warning.
    jittered = DispersionProbe(min_packets=4, window=9, confirm=2)
    jittered.update(train(0, 0.0, [0.0, 0.0, 0.009, 0.0, 0.0, 0.012, 0.0]))
    assert jittered.warning is None


def test_a_warning_holds_frames_back_but_is_no_verdict() -> None:
    model = QueuePredictor()
    steady(model, rate=8 * M, until=1.0)
    for i in range(40):
        model.on_sent(SIZE, 1.0 + i * 0.0012)
    model.on_feedback([], 0.0, 1.05, capacity=8 * M, train_rate=None, warning=2 * M)
    assert model.predict(1.05) < 0.005  # the rate cut waits for a second train
    assert model.predict_warned(1.05) > 0.1  # 48 kB at 2 Mbit/s, sent in the last 50 ms
    # A train a little slower than the capacity warns of nothing.
    model.on_feedback([], 0.0, 1.05, capacity=8 * M, train_rate=None, warning=None)
    unwarned = model.predict_warned(1.05)
    model.on_feedback([], 0.0, 1.05, capacity=8 * M, train_rate=None, warning=7 * M)
    assert model.predict_warned(1.05) == unwarned < 0.1


def test_loss_is_counted_over_half_a_second_not_one_burst() -> None:
    loss = LossBasedControl(initial=4 * M, min_rate=0.1 * M, max_rate=10 * M)
    # A burst of 3 in 20 (15 %) then clean packets, all within half a second.
    loss.update(lost=3, total=20, current=4 * M, rtt=0.05, now=0.1)
    for i in range(2, 6):
        loss.update(lost=0, total=40, current=4 * M, rtt=0.05, now=i * 0.1)
    assert loss.rate >= 4 * M
    held = loss.update(lost=0, total=40, current=4 * M, rtt=0.05, now=0.65)
    assert loss.loss < 0.02
    assert held >= 4 * M
