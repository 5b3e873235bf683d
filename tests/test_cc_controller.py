"""The GCC controller on a simulated bottleneck under a fake clock."""

from __future__ import annotations

import statistics

import pytest

from cloudarcade.cc import create_controller
from cloudarcade.cc.delay import GroupDelta, OveruseDetector, TrendlineEstimator, Usage
from cloudarcade.cc.loss import LossBasedControl

from .cc_linksim import run_link

M = 1_000_000


def gcc(initial: float, max_rate: float = 10 * M):  # type: ignore[no-untyped-def]
    return create_controller("gcc", initial=initial, min_rate=0.2 * M, max_rate=max_rate)


def test_overuse_decreases_below_capacity() -> None:
    controller = gcc(8 * M)
    run = run_link(controller, lambda t: 3 * M, 8.0)
    late = run.targets_between(5.0, 8.0)
    # Additive increase probes a little above the link between decreases.
    assert statistics.fmean(late) < 3 * M and max(late) < 1.1 * 3 * M
    assert min(late) > 0.5 * M


def test_underuse_increases() -> None:
    controller = gcc(1 * M)
    run = run_link(controller, lambda t: 20 * M, 10.0)
    assert run.targets[-1] > 3 * M


def test_capacity_dip_recovers() -> None:
    controller = gcc(8 * M)
    run = run_link(controller, lambda t: 3 * M if 4 <= t < 8 else 20 * M, 20.0)
    during = run.targets_between(6.0, 8.0)
    # Additive increase probes a little above the link between decreases.
    assert max(during) < 1.1 * 3 * M
    assert run.targets[-1] > max(during)


def test_predicted_queue_sees_a_drop_before_the_feedback_does() -> None:
    controller = gcc(8 * M)
    run = run_link(
        controller, lambda t: 3 * M if t >= 4 else 20 * M, 5.0, sample_every=1
    )
    assert min(run.targets_between(3.0, 4.0)) > 5 * M
    predicted = run.first_time(run.ahead, 0.030, after=4.0)
    reported = run.first_time(run.queueing, 0.030, after=4.0)
    assert predicted is not None and reported is not None
    # Feedback reports a packet's queue only once it is out; the prediction adds
    # what was sent since, at the rate the slowed train shows.
    assert predicted < reported
    assert max(run.targets_between(4.5, 5.0)) < 3 * M


def test_jitter_alone_does_not_walk_the_rate_down() -> None:
    controller = gcc(2 * M, max_rate=8 * M)
    run = run_link(controller, lambda t: 150 * M, 15.0, jitter=0.008)
    assert min(run.targets_between(8.0, 15.0)) > 6 * M


def test_loss_backs_off() -> None:
    controller = gcc(5 * M)
    run = run_link(controller, lambda t: 50 * M, 6.0, loss=0.2)
    # No queue ever builds on this link: only the loss-based controller acts.
    assert run.targets[-1] < 0.8 * 5 * M
    assert run.targets[-1] < min(run.targets_between(0.0, 1.0))


def test_loss_control_rules() -> None:
    loss = LossBasedControl(initial=4 * M, min_rate=0.1 * M, max_rate=10 * M)
    loss.update(lost=0, total=100, current=4 * M, rtt=0.05, now=0.0)
    held = loss.update(lost=5, total=100, current=4 * M, rtt=0.05, now=1.0)
    cut = loss.update(lost=30, total=100, current=4 * M, rtt=0.05, now=2.0)
    assert held == pytest.approx(4 * M)
    assert cut == pytest.approx(4 * M * 0.85)


def test_steady_link_does_not_oscillate() -> None:
    controller = gcc(2 * M)
    run = run_link(controller, lambda t: 5 * M, 40.0)
    late = run.targets_between(20.0, 40.0)
    mean = statistics.fmean(late)
    assert 0.6 * 5 * M < mean <= 5 * M
    assert statistics.pstdev(late) / mean < 0.15


def test_trendline_and_detector_see_growing_delay() -> None:
    trendline = TrendlineEstimator()
    detector = OveruseDetector()
    usage = Usage.NORMAL
    for i in range(60):
        # Each group arrives 2 ms later than it was sent apart: a queue building.
        delta = GroupDelta(send_delta=0.010, arrival_delta=0.012, arrival=i * 0.012, size_delta=0)
        usage = detector.detect(trendline.update(delta), delta.send_delta, i * 0.012)
    assert usage is Usage.OVERUSING
    for i in range(60, 120):
        delta = GroupDelta(send_delta=0.010, arrival_delta=0.008, arrival=i * 0.012, size_delta=0)
        usage = detector.detect(trendline.update(delta), delta.send_delta, i * 0.012)
    assert usage is Usage.UNDERUSING


def test_fixed_controller_and_registry() -> None:
    fixed = create_controller("none", initial=3 * M, min_rate=0.1 * M, max_rate=8 * M)
    fixed.on_feedback([], 1.0)
    assert fixed.target == 3 * M
    with pytest.raises(ValueError, match="expected one of gcc, none"):
        create_controller("bbr", initial=1, min_rate=1, max_rate=1)
