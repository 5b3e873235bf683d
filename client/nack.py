"""Which RTP packets to ask for again, and when (sans-I/O).

aiortc NACKs a gap once, when it first sees it, and never again: if the NACK
or the retransmission is lost, the frame waits until the jitter buffer gives
up. Here every missing packet is asked for at once and then again every
``retry_interval`` until it arrives, ``max_retries`` is reached or it is older
than ``max_age``.
"""

from __future__ import annotations

from dataclasses import dataclass


class SequenceUnwrapper:
    """Extends 16-bit RTP sequence numbers to a monotonic integer."""

    def __init__(self) -> None:
        self._highest: int | None = None

    def unwrap(self, seq: int) -> int:
        if self._highest is None:
            self._highest = seq
            return seq
        delta = (seq - self._highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        ext = self._highest + delta
        if ext > self._highest:
            self._highest = ext
        return ext


@dataclass
class _Missing:
    next_time: float
    sent: int
    since: float


class NackTracker:
    """Tracks gaps in received sequence numbers; ``due(now)`` says what to NACK."""

    def __init__(
        self,
        *,
        retry_interval: float = 0.02,
        max_retries: int = 10,
        max_age: float = 1.0,
        max_missing: int = 1000,
    ) -> None:
        self.retry_interval = retry_interval
        self.max_retries = max_retries
        self.max_age = max_age
        self.max_missing = max_missing
        self._unwrapper = SequenceUnwrapper()
        self._highest: int | None = None
        self._missing: dict[int, _Missing] = {}
        self.nacks_sent = 0
        self.given_up = 0

    def received(self, seq: int, now: float) -> int:
        """Note packet ``seq`` (16-bit) arriving at ``now``; returns its extended number."""
        ext = self._unwrapper.unwrap(seq)
        if self._highest is None:
            self._highest = ext
        elif ext > self._highest:
            for gap in range(self._highest + 1, ext):
                self._missing[gap] = _Missing(next_time=now, sent=0, since=now)
            self._highest = ext
            if len(self._missing) > self.max_missing:
                # A burst this large will be recovered by a keyframe, not NACKs.
                for old in sorted(self._missing)[: len(self._missing) - self.max_missing]:
                    del self._missing[old]
                    self.given_up += 1
        else:
            self._missing.pop(ext, None)
        return ext

    def forget_through(self, ext: int) -> None:
        """Stop asking for packets up to ``ext``: the frame they belong to was skipped."""
        for seq in [s for s in self._missing if s <= ext]:
            del self._missing[seq]

    def due(self, now: float) -> list[int]:
        """16-bit sequence numbers to NACK now; schedules their next retry."""
        out: list[int] = []
        for ext, entry in list(self._missing.items()):
            if entry.sent >= self.max_retries or now - entry.since > self.max_age:
                del self._missing[ext]
                self.given_up += 1
                continue
            if entry.next_time <= now:
                out.append(ext & 0xFFFF)
                entry.sent += 1
                entry.next_time = now + self.retry_interval
        self.nacks_sent += len(out)
        return out

    def next_wakeup(self) -> float | None:
        """When ``due`` next has something to say, or None."""
        if not self._missing:
            return None
        return min(entry.next_time for entry in self._missing.values())

    @property
    def missing(self) -> int:
        return len(self._missing)
