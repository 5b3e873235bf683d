"""The interface every link stage shares, and a chain that composes them.

Stages are sans-I/O: they never read a clock or touch a socket. The caller
passes ``now`` (seconds) into every call and asks ``next_wakeup()`` when to call
again, so tests drive them with a fake clock and the relay with a real one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable

from .packet import Drop, Packet


class Stage(ABC):
    """A link stage: packets go in with ``push`` and come out of ``pop_ready``."""

    def __init__(self) -> None:
        self._drops: list[Drop] = []
        self.drop_counts: Counter[str] = Counter()

    @abstractmethod
    def push(self, packet: Packet, now: float) -> None:
        """Accept ``packet`` at time ``now`` (non-decreasing across calls)."""

    @abstractmethod
    def pop_ready(self, now: float) -> list[Packet]:
        """Return the packets whose departure time is <= ``now``, in departure order.

        Each returned packet's ``time`` is its departure time in the model, which
        may be earlier than ``now`` when the caller is late.
        """

    @abstractmethod
    def next_wakeup(self) -> float | None:
        """The earliest time something may leave or change, or None when idle."""

    @property
    def clock_origin(self) -> float | None:
        """When the stage's clock started (a trace or an outage schedule starts at
        its first packet), or None for a stage without one (or before it starts)."""
        return None

    def drop(self, packet: Packet, reason: str, now: float) -> None:
        """Record a drop; the owner collects them with ``take_drops``."""
        self._drops.append(Drop(packet, reason, now))
        self.drop_counts[reason] += 1

    def take_drops(self) -> list[Drop]:
        """Return and forget the drops recorded since the last call."""
        drops, self._drops = self._drops, []
        return drops


class PassStage(Stage):
    """Base for stages that decide at push time and hold nothing back."""

    def __init__(self) -> None:
        super().__init__()
        self._ready: list[Packet] = []

    def pop_ready(self, now: float) -> list[Packet]:
        ready, self._ready = self._ready, []
        return ready

    def next_wakeup(self) -> float | None:
        return self._ready[0].time if self._ready else None


class Chain(Stage):
    """Stages in series: each packet leaves stage i and enters i+1 at the same instant.

    The hand-over uses the packet's model departure time, not the poll time,
    so a late poll does not add its lateness to the downstream delays.
    """

    def __init__(self, stages: Iterable[Stage]) -> None:
        super().__init__()
        self.stages = list(stages)
        self._out: list[Packet] = []

    def push(self, packet: Packet, now: float) -> None:
        if not self.stages:
            packet.time = now
            self._out.append(packet)
            return
        self._advance(now)
        self.stages[0].push(packet, now)
        self._advance(now)

    def _advance(self, now: float) -> None:
        for i, stage in enumerate(self.stages):
            ready = stage.pop_ready(now)
            if i + 1 < len(self.stages):
                nxt = self.stages[i + 1]
                for packet in ready:
                    nxt.push(packet, packet.time)
            else:
                self._out.extend(ready)
            for d in stage.take_drops():
                self._drops.append(d)
                self.drop_counts[d.reason] += 1

    def pop_ready(self, now: float) -> list[Packet]:
        self._advance(now)
        out, self._out = self._out, []
        return out

    @property
    def clock_origin(self) -> float | None:
        """The first clock origin among its stages, or None while no stage has one."""
        for stage in self.stages:
            origin = stage.clock_origin
            if origin is not None:
                return origin
        return None

    def next_wakeup(self) -> float | None:
        if self._out:
            return self._out[0].time
        earliest = None
        for stage in self.stages:
            wake = stage.next_wakeup()
            if wake is not None and (earliest is None or wake < earliest):
                earliest = wake
        return earliest


def run_fake_clock(
    stage: Stage, arrivals: Iterable[tuple[float, Packet]], *, until: float | None = None
) -> list[Packet]:
    """Drive ``stage`` with a perfect clock: push each packet at its time and
    pop at every wake-up; return the delivered packets (``time`` = departure).

    Test and analysis helper: it is what the relay does, minus timer lateness.
    """
    out: list[Packet] = []
    pending = sorted(arrivals, key=lambda a: a[0])
    i = 0
    while True:
        wake = stage.next_wakeup()
        t_arr = pending[i][0] if i < len(pending) else None
        if t_arr is not None and (wake is None or t_arr <= wake):
            stage.push(pending[i][1], t_arr)
            i += 1
            continue
        if wake is None:
            break
        if until is not None and wake > until:
            break
        out.extend(stage.pop_ready(wake))
    return out
