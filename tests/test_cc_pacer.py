"""The pacer under a fake clock."""

from __future__ import annotations

import pytest

from cloudarcade.cc import Pacer


def test_a_mean_sized_frame_leaves_at_once() -> None:
    pacer = Pacer(8_000_000, factor=1.5, burst=0.020)
    # 16.8 kB: one frame of 8 Mbit/s at 60 fps, within the 30 kB burst.
    departures = [pacer.schedule(1200, 0.0) for _ in range(14)]
    assert departures == [0.0] * 14
    assert pacer.backlog(0.0) == 0.0
    # One frame interval later the bucket has refilled: the next frame leaves at once too.
    assert pacer.schedule(1200, 1 / 60) == pytest.approx(1 / 60)


def test_a_keyframe_is_spread_at_the_pacing_rate() -> None:
    pacer = Pacer(2_000_000, factor=1.5, burst=0.020)
    # 120 kB at 375 kB/s: the first 7.5 kB leave at once, the rest over 300 ms.
    departures = [pacer.schedule(1200, 0.0) for _ in range(100)]
    assert departures == sorted(departures)
    assert departures[0] == 0.0
    assert departures[-1] == pytest.approx((120_000 - 1200 - 7_500) / 375_000, abs=1e-6)
    assert pacer.backlog(0.0) == pytest.approx((120_000 - 7_500) / 375_000, abs=1e-6)
    assert pacer.next_wakeup(0.0) == pytest.approx(pacer.backlog(0.0))
    assert pacer.next_wakeup(1.0) is None


def test_rate_change_and_bad_values() -> None:
    pacer = Pacer(1_000_000)
    pacer.rate = 4_000_000
    assert pacer.pacing_rate == pytest.approx(4_000_000 * 1.5 / 8)
    with pytest.raises(ValueError, match="pacing rate 0"):
        pacer.rate = 0
    with pytest.raises(ValueError, match=r"pacing factor 0\.5"):
        Pacer(1_000_000, factor=0.5)
