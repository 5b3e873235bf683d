"""KeyDedupe: key events arriving as copies on two channels are applied once, in key order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade.protocol import (
    SEQ_MAX,
    KeyDedupe,
    KeyEvent,
    PointerEvent,
    Verdict,
)
from cloudarcade.protocol.redundancy import seq_newer


def key(seq: int, code: str = "Space", down: bool = True) -> KeyEvent:
    return KeyEvent(seq=seq, ts=0.0, code=code, down=down)


def test_first_copy_applies_and_later_copies_are_duplicates() -> None:
    dedupe = KeyDedupe()
    assert dedupe.accept(key(1)) is Verdict.APPLY
    assert dedupe.accept(key(1)) is Verdict.DUPLICATE
    assert dedupe.accept(key(2, down=False)) is Verdict.APPLY
    assert dedupe.accept(key(1)) is Verdict.DUPLICATE


def test_a_late_key_down_does_not_repress_a_released_key() -> None:
    dedupe = KeyDedupe()
    # The key-down's every copy was delayed; the key-up's copy came first.
    assert dedupe.accept(key(2, down=False)) is Verdict.APPLY
    assert dedupe.accept(key(1, down=True)) is Verdict.STALE
    assert dedupe.accept(key(1, down=True)) is Verdict.DUPLICATE
    # Other keys are independent.
    assert dedupe.accept(key(3, code="KeyW")) is Verdict.APPLY


def test_pointer_and_pad_messages_always_apply() -> None:
    dedupe = KeyDedupe()
    pointer = PointerEvent(seq=1, ts=0.0, x=0.5, y=0.5)
    assert dedupe.accept(pointer) is Verdict.APPLY
    assert dedupe.accept(pointer) is Verdict.APPLY


def test_memory_is_bounded_and_old_copies_still_do_not_apply() -> None:
    dedupe = KeyDedupe(window=8, max_codes=4)
    for seq in range(1, 1001):
        assert dedupe.accept(key(seq, code=f"K{seq % 3}", down=seq % 2 == 0)) is Verdict.APPLY
    assert len(dedupe._seen) == len(dedupe._seen_set) == 8
    # A copy far older than the window: the key's newer applied event still refuses it.
    assert dedupe.accept(key(10, code="K1")) is Verdict.STALE
    for seq in range(1001, 1011):  # more codes than max_codes: the oldest are forgotten
        dedupe.accept(key(seq, code=f"X{seq}"))
    assert len(dedupe._last) == 4


def test_seq_order_wraps_from_seq_max_to_one() -> None:
    assert seq_newer(1, SEQ_MAX) and not seq_newer(SEQ_MAX, 1)
    assert seq_newer(5, 4) and not seq_newer(4, 5) and not seq_newer(4, 4)
    dedupe = KeyDedupe()
    assert dedupe.accept(key(SEQ_MAX, down=True)) is Verdict.APPLY
    assert dedupe.accept(key(1, down=False)) is Verdict.APPLY


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="expected both >= 1"):
        KeyDedupe(window=0)


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[KeyEvent], list[KeyEvent]]:
    """Key events in send order, and one arrival order of their copies: every reliable
    copy, in order (the backstop channel), and 0..4 unreliable copies each, anywhere."""
    codes = draw(st.lists(st.sampled_from(["KeyA", "KeyB", "Space"]), min_size=1, max_size=20))
    events = [key(i + 1, code, draw(st.booleans())) for i, code in enumerate(codes)]
    order = list(events)  # the reliable channel
    for event in events:
        for _ in range(draw(st.integers(0, 4))):
            order.insert(draw(st.integers(0, len(order))), event)
    return events, order


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_any_interleaving_applies_each_event_once_and_ends_in_the_sent_key_state(
    case: tuple[list[KeyEvent], list[KeyEvent]],
) -> None:
    events, order = case
    dedupe = KeyDedupe()
    applied: list[KeyEvent] = []
    verdicts = {verdict: 0 for verdict in Verdict}
    first_arrival: dict[int, int] = {}  # seq -> index in `applied` when it first arrived
    for event in order:
        first_arrival.setdefault(event.seq, len(applied))
        verdict = dedupe.accept(event)
        verdicts[verdict] += 1
        if verdict is Verdict.APPLY:
            applied.append(event)
    seqs = [e.seq for e in applied]
    assert len(seqs) == len(set(seqs))  # never twice
    # Key state as the game sees it equals the state after the events in send order.
    held = {e.code: e.down for e in applied}
    assert held == {e.code: e.down for e in events}
    # An event is left out only if a newer event for its key was applied before it arrived.
    for event in events:
        if event.seq not in seqs:
            before = applied[: first_arrival[event.seq]]
            assert any(e.code == event.code and e.seq > event.seq for e in before), event
    assert verdicts[Verdict.APPLY] + verdicts[Verdict.STALE] == len(events)
    assert sum(verdicts.values()) == len(order)
