"""The session's cap on frames skipped in a row, whoever is congested."""

from __future__ import annotations

import pytest

from cloudarcade.server.congestion import MAX_SKIPPED, SkipRun


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
