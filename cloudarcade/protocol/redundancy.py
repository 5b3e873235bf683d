"""Redundant key events: when clients send copies, and how the server keeps the first.

A key event goes on the reliable, ordered ``input-events`` channel (the backstop:
a lost key-up must never leave a key held) and, as copies of the same message
with the same ``seq``, on the unordered ``input-state`` channel, which never
retransmits. A lost reliable message waits for an SCTP retransmission (aiortc's
minimum RTO is 1 s) and holds up every later key event behind it; a copy that
gets through does not wait. Copies leave at :data:`KEY_COPY_DELAYS` after the
reliable send, spread out so that one loss burst does not take them all (see
docs/protocol.md for the figures).

:class:`KeyDedupe` is the server's side, one per client: it applies each key
event once, at its first arrival from either channel, and per key code only
when it is newer than the last one applied for that code, so that a late
key-down never re-presses a key whose key-up was already applied.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

from cloudarcade.protocol.inputs import SEQ_MAX, InputEvent, KeyEvent

KEY_COPY_DELAYS: Final = (0.0, 0.010, 0.030, 0.060)
"""Seconds after the reliable send at which a key event's unreliable copies go out.

On the 5g-congested profile's Gilbert-Elliott loss (p=0.002, r=0.3: bursts of
about 3 packets) with the client's ~100 uplink packets/s, a simulation gives
P(every copy lost | the reliable one lost) = 0.03 for these delays, 0.12 for
(0, 10, 30) ms and 0.70 for a copy at 0 ms alone. The copy at 0 ms still pays:
it does not queue behind an earlier lost message on the ordered channel.
"""


class Verdict(enum.Enum):
    """What the server does with an arriving input; the values are metric labels."""

    APPLY = "apply"
    DUPLICATE = "duplicate"
    """A copy of a key event that already arrived."""
    STALE = "stale"
    """A key event's first arrival, after a newer event for the same key was applied."""


DISCARD_REASONS: Final = (Verdict.DUPLICATE.value, Verdict.STALE.value)


def seq_newer(a: int, b: int) -> bool:
    """Whether ``seq`` ``a`` comes after ``b``, across the wrap from SEQ_MAX to 1."""
    return 0 < (a - b) % SEQ_MAX < SEQ_MAX // 2


class KeyDedupe:
    """One client's filter of key events arriving on two channels (sans-I/O).

    Memory is bounded: the seqs of the last ``window`` key events seen (only to
    tell a duplicate from a stale event; both are discarded) and the last seq
    applied for at most ``max_codes`` key codes, the least recently used
    forgotten first. Pointer and pad messages are never copied and always apply.
    """

    def __init__(self, window: int = 512, max_codes: int = 256) -> None:
        if window < 1 or max_codes < 1:
            raise ValueError(f"window {window}, max_codes {max_codes}: expected both >= 1")
        self._seen: deque[int] = deque()
        self._seen_set: set[int] = set()
        self._window = window
        self._last: dict[str, int] = {}  # code -> last applied seq, least recently used first
        self._max_codes = max_codes

    def accept(self, event: InputEvent) -> Verdict:
        """Whether to apply ``event`` now; call once per arriving message."""
        if not isinstance(event, KeyEvent):
            return Verdict.APPLY
        seq = event.seq
        if seq in self._seen_set:
            return Verdict.DUPLICATE
        self._remember(seq)
        last = self._last.pop(event.code, None)
        if last is not None and not seq_newer(seq, last):
            self._last[event.code] = last
            return Verdict.DUPLICATE if seq == last else Verdict.STALE
        self._last[event.code] = seq
        if len(self._last) > self._max_codes:
            del self._last[next(iter(self._last))]
        return Verdict.APPLY

    def _remember(self, seq: int) -> None:
        self._seen.append(seq)
        self._seen_set.add(seq)
        if len(self._seen) > self._window:
            self._seen_set.discard(self._seen.popleft())
