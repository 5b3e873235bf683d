"""The session's cap on frames skipped in a row, whoever is congested."""

from __future__ import annotations

import pytest

from cloudarcade.server.congestion import MAX_SKIPPED, STALLED_S, SkipRun, link_full


def test_a_session_sends_one_frame_in_six_however_many_viewers_stay_congested() -> None:
    skips = SkipRun()
    decisions = [skips.allow(True) for _ in range(60)]
    # Skipped five, sent the sixth: the same whether one viewer or four are
    # congested (the session asks once per frame, with any() over its viewers).
    assert decisions[: MAX_SKIPPED + 1] == [True] * MAX_SKIPPED + [False]
    assert decisions.count(False) == 60 // (MAX_SKIPPED + 1)


def test_a_frame_sent_for_a_clear_link_starts_the_run_again() -> None:
    skips = SkipRun(limit=2)
    assert [skips.allow(c) for c in (True, False, True, True, True)] == [
        True, False, True, True, False,
    ]
    with pytest.raises(ValueError, match="expected >= 0"):
        SkipRun(limit=-1)


class _Viewer:
    def __init__(self, congested: bool) -> None:
        self._congested = congested
        self.asked = 0

    def congested(self, now: float) -> bool:
        self.asked += 1
        return self._congested


def test_a_stalled_viewer_does_not_hold_the_others_back() -> None:
    stalled, watching = _Viewer(congested=True), _Viewer(congested=False)
    now = 100.0
    # Not heard of for 5 s: its silence reads as a queue, but the other viewer is heard.
    assert not link_full([(now - 5.0, stalled), (now - 0.02, watching)], now)
    assert stalled.asked == 0
    # Heard again (or only just gone quiet): it counts.
    assert link_full([(now - 0.5, stalled), (now - 0.02, watching)], now)
    assert link_full([(now - STALLED_S + 0.01, stalled), (now, watching)], now)
    # Nobody heard: the stalled viewers still count (a lone viewer's own link).
    assert link_full([(now - 5.0, stalled)], now)
    assert not link_full([], now)
