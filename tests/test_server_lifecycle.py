"""Viewer liveness on a fake clock, and the lifecycle tables."""

from __future__ import annotations

import pytest

from cloudarcade.metrics.definitions import SESSION_END_REASONS
from cloudarcade.server.lifecycle import (
    SESSION_TRANSITIONS,
    VIEWER_TRANSITIONS,
    CloseReason,
    Lifecycle,
    LifecycleError,
    SessionState,
    ViewerState,
)
from cloudarcade.server.liveness import Liveness


def test_a_viewer_that_never_connects_times_out_at_the_ice_deadline() -> None:
    live = Liveness(ice_timeout=5.0, silence_timeout=3.0, start=100.0)
    assert live.next_wakeup(100.0) == 105.0
    assert live.verdict(104.9) is None
    assert live.verdict(105.0) == "not connected after 5.0 s"


def test_a_connected_viewer_times_out_only_after_silence() -> None:
    live = Liveness(ice_timeout=5.0, silence_timeout=3.0, start=0.0)
    live.connected(1.0)
    assert live.verdict(6.0) is not None  # the ICE deadline no longer applies; silence does
    live.heard(5.0)
    assert live.verdict(7.9) is None
    wake = live.next_wakeup(7.9)
    assert wake is not None and 8.0 < wake < 8.01
    assert live.verdict(wake) == "no RTCP from the client for 3.0 s"
    live.disconnected()  # while the connection is down, silence is not held against it
    assert live.verdict(20.0) is None and live.next_wakeup(20.0) == 20.75


def test_zero_turns_a_check_off() -> None:
    live = Liveness(ice_timeout=0.0, silence_timeout=0.0, start=0.0)
    assert live.next_wakeup(0.0) is None and live.verdict(1e6) is None
    live.connected(1.0)
    assert live.next_wakeup(2.0) is None and live.verdict(1e6) is None


def test_lifecycles_move_only_along_their_tables() -> None:
    viewer = Lifecycle(ViewerState.NEW, VIEWER_TRANSITIONS)
    with pytest.raises(LifecycleError, match="cannot go from new to connected; expected"):
        viewer.to(ViewerState.CONNECTED)
    for state in (ViewerState.ANSWERED, ViewerState.CONNECTED, ViewerState.CLOSING,
                  ViewerState.CLOSED):
        viewer.to(state)
    assert not any(viewer.can(s) for s in ViewerState)
    session = Lifecycle(SessionState.WAITING, SESSION_TRANSITIONS)
    session.to(SessionState.CLOSING)
    with pytest.raises(LifecycleError):
        session.to(SessionState.RUNNING)
    # Every state has a row; the close reasons are the metrics' labels.
    assert set(VIEWER_TRANSITIONS) == set(ViewerState)
    assert set(SESSION_TRANSITIONS) == set(SessionState)
    assert {r.value for r in CloseReason} == set(SESSION_END_REASONS)
