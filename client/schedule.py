"""When scripted inputs go out: jittered, open-loop, on one seeded schedule.

Both the headless client's ``run_inputs`` and the bench's probes use
:class:`InputSchedule`: each gap is ``interval`` x U(0.5, 1.5), so inputs do not
lock to the game tick, and the times are absolute (``start`` + the gaps), so a
late wake-up does not push every later input back. The schedule is sans-I/O;
:func:`run_schedule` is the asyncio driver.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator


class InputSchedule:
    """Due times ``start + gap_1 + ... + gap_k``, for ``count`` inputs or while before ``end``."""

    def __init__(
        self,
        interval: float,
        *,
        seed: int,
        start: float,
        count: int | None = None,
        end: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"input interval {interval}: expected > 0 seconds")
        if count is None and end is None:
            raise ValueError("an input schedule needs a count or an end time")
        self.interval = interval
        self.start = start
        self.count = count
        self.end = end
        self._rng = random.Random(seed)

    def __iter__(self) -> Iterator[float]:
        due = self.start
        sent = 0
        while self.count is None or sent < self.count:
            due += self.interval * (0.5 + self._rng.random())
            if self.end is not None and due >= self.end:
                return
            yield due
            sent += 1


async def run_schedule(
    schedule: InputSchedule,
    send: Callable[[], object],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``send`` at each due time of ``schedule``; then wait for its end, if it has one."""
    for due in schedule:
        await asyncio.sleep(max(due - clock(), 0.0))
        send()
    if schedule.end is not None:
        await asyncio.sleep(max(schedule.end - clock(), 0.0))
