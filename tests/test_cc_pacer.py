"""The pacer under a fake clock."""

from __future__ import annotations

import pytest

from cloudarcade.cc import Pacer


def drain(pacer: Pacer[int], start: float) -> list[tuple[float, int]]:
    """Pop until empty, waking when the pacer asks; (time, item) per packet."""
    out: list[tuple[float, int]] = []
    now = start
    while (wake := pacer.next_wakeup(now)) is not None:
        now = max(now, wake)
        out.extend((now, item) for item in pacer.pop(now))
    return out


def test_a_mean_sized_frame_leaves_at_once() -> None:
    pacer: Pacer[int] = Pacer(8_000_000, factor=1.5, burst=0.020)
    for i in range(14):  # 16.8 kB: one frame of 8 Mbit/s at 60 fps
        pacer.push(i, 1200, 0.0)
    sent = drain(pacer, 0.0)
    assert [item for _, item in sent] == list(range(14))
    assert max(t for t, _ in sent) == 0.0


def test_a_keyframe_is_spread_at_the_pacing_rate() -> None:
    pacer: Pacer[int] = Pacer(2_000_000, factor=1.5, burst=0.020)
    for i in range(100):  # 120 kB at 3 Mbit/s takes 320 ms
        pacer.push(i, 1200, 0.0)
    assert pacer.drain_time() == pytest.approx((120_000 - 7500) / 375_000)
    sent = drain(pacer, 0.0)
    last = max(t for t, _ in sent)
    assert last == pytest.approx(0.30, abs=0.01)
    assert len(pacer) == 0 and pacer.queued_bytes == 0


def test_rate_change_and_bad_values() -> None:
    pacer: Pacer[int] = Pacer(1_000_000)
    pacer.rate = 4_000_000
    assert pacer.pacing_rate == pytest.approx(4_000_000 * 1.5 / 8)
    assert pacer.next_wakeup(0.0) is None
    with pytest.raises(ValueError, match="pacing rate 0"):
        pacer.rate = 0
    with pytest.raises(ValueError, match=r"pacing factor 0\.5"):
        Pacer(1_000_000, factor=0.5)
