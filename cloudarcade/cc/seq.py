"""Unwrapping 16-bit sequence numbers into a monotonic count."""

from __future__ import annotations

SEQ_MODULO = 1 << 16


class SeqUnwrapper:
    """Maps 16-bit sequence numbers to ints that keep counting across wrap-around.

    Each number is placed within half the space of the last one seen, so
    reordering by less than 32768 packets is unwrapped correctly.
    """

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, seq: int) -> int:
        if not 0 <= seq < SEQ_MODULO:
            raise ValueError(f"sequence number {seq}: expected 0..65535")
        if self._last is None:
            self._last = seq
            return seq
        diff = (seq - self._last) % SEQ_MODULO
        if diff >= SEQ_MODULO // 2:
            diff -= SEQ_MODULO
        value = self._last + diff
        self._last = max(self._last, value)
        return value
