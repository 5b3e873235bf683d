"""Which unit goes to which cluster node next, and what became of each attempt.

Sans-I/O: the Ray driver (:mod:`cloudarcade.bench.cluster`) tells it what
happened (``started``, ``finished``, ``failed``, with ``now``) and asks it
what to submit next; tests drive it with a fake clock. Ray runs the tasks,
moves the data and notices dead nodes; this only keeps the bench's rules:

- a unit runs alone on its node (the node holds one ``cloudarcade_bench``);
- nodes that share a host (same hostname and boot id) share its cores, so at
  most one unit runs per host at a time, unless ``allow_shared_host``: then
  every unit measured on such a host is flagged;
- a unit whose node died goes back to the front of the queue for another
  node, at most ``retries`` times; every attempt is recorded;
- a unit that failed for its own reasons (a node lacking Chromium, a server
  that did not start) is not retried: it is recorded as failed with its
  error, and the run goes on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cloudarcade.bench.unit import Unit

# Outcomes of an attempt.
MEASURED = "measured"
FAILED = "failed"
NODE_LOST = "node_lost"


@dataclass(frozen=True)
class Node:
    """A node that may measure: its Ray id, a label for people, and its host key."""

    node_id: str
    label: str
    host: str


@dataclass
class Attempt:
    """One try of one unit on one node."""

    unit: Unit
    node: Node
    number: int  # 1 for the first try
    submitted: float
    ended: float | None = None
    outcome: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number, "node": self.node.label, "node_id": self.node.node_id,
            "host": self.node.host, "outcome": self.outcome, "error": self.error,
            # On the driver's monotonic clock.
            "submitted": round(self.submitted, 3),
            "ended": None if self.ended is None else round(self.ended, 3),
        }


@dataclass
class UnitState:
    unit: Unit
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str | None = None  # MEASURED or FAILED once settled
    error: str | None = None  # why it failed
    shared_host: bool = False


class Dispatch:
    """The placement rules and the record of attempts; no I/O, no clock of its own."""

    def __init__(
        self, units: list[Unit], nodes: list[Node], *, allow_shared_host: bool = False,
        retries: int = 2,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries: expected 0 or more, got {retries}")
        self.nodes = list(nodes)
        self.allow_shared_host = allow_shared_host
        self.retries = retries
        self.states = {unit: UnitState(unit) for unit in units}
        self._pending: deque[Unit] = deque(units)
        self._running: dict[str, Attempt] = {}  # by node id
        self._dead: set[str] = set()
        self._used: dict[str, int] = {}
        hosts: dict[str, int] = {}
        for node in nodes:
            hosts[node.host] = hosts.get(node.host, 0) + 1
        self.shared_hosts = {host for host, count in hosts.items() if count > 1}

    @property
    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.node_id not in self._dead]

    @property
    def done(self) -> bool:
        return not self._pending and not self._running

    @property
    def running(self) -> list[Attempt]:
        return list(self._running.values())

    def next_attempts(self, now: float) -> list[Attempt]:
        """Attempts to submit now: pending units on free nodes (and free hosts)."""
        busy_hosts = {a.node.host for a in self._running.values()}
        out = []
        # The least used node first, so that nodes sharing a host take turns.
        for node in sorted(self.alive, key=lambda n: self._used.get(n.node_id, 0)):
            if not self._pending:
                break
            if node.node_id in self._running:
                continue
            if node.host in busy_hosts and not self.allow_shared_host:
                continue
            unit = self._pending.popleft()
            state = self.states[unit]
            attempt = Attempt(unit, node, len(state.attempts) + 1, submitted=now)
            state.attempts.append(attempt)
            self._running[node.node_id] = attempt
            self._used[node.node_id] = self._used.get(node.node_id, 0) + 1
            busy_hosts.add(node.host)
            out.append(attempt)
        if self._pending and not self._running and not self.alive:
            for unit in list(self._pending):
                self._settle(unit, FAILED, "no bench node left alive")
            self._pending.clear()
        return out

    def finished(self, attempt: Attempt, now: float) -> None:
        """The attempt measured its unit."""
        self._end(attempt, now, MEASURED, None)
        state = self.states[attempt.unit]
        state.shared_host = self.allow_shared_host and attempt.node.host in self.shared_hosts
        self._settle(attempt.unit, MEASURED)

    def failed(
        self, attempt: Attempt, now: float, error: str, *, node_lost: bool,
        node_dead: bool = True,
    ) -> None:
        """The attempt failed: its node (or worker process) went away (``node_lost``:
        retried, on another node when ``node_dead``), or the unit itself failed."""
        self._end(attempt, now, NODE_LOST if node_lost else FAILED, error)
        if not node_lost:
            self._settle(attempt.unit, FAILED, error)
            return
        if node_dead:
            self._dead.add(attempt.node.node_id)
        if attempt.number <= self.retries and self.alive:
            self._pending.appendleft(attempt.unit)
        else:
            self._settle(attempt.unit, FAILED, f"node lost {attempt.number} time(s): {error}")

    def abandon(self, now: float, reason: str) -> None:
        """Stop: running attempts end with ``reason``, pending units are never tried."""
        for attempt in list(self._running.values()):
            self._end(attempt, now, FAILED, reason)
        self._pending.clear()

    def retried(self) -> int:
        return sum(max(len(s.attempts) - 1, 0) for s in self.states.values())

    def _end(self, attempt: Attempt, now: float, outcome: str, error: str | None) -> None:
        attempt.ended, attempt.outcome, attempt.error = now, outcome, error
        self._running.pop(attempt.node.node_id, None)

    def _settle(self, unit: Unit, outcome: str, error: str | None = None) -> None:
        self.states[unit].outcome = outcome
        self.states[unit].error = error

    def to_dict(self) -> list[dict[str, Any]]:
        """One entry per unit, with its attempts: the ``units`` of metadata.json."""
        return [
            {**s.unit.to_dict(), "outcome": s.outcome, "error": s.error,
             "shared_host": s.shared_host,
             "retries": max(len(s.attempts) - 1, 0),
             "attempts": [a.to_dict() for a in s.attempts]}
            for s in self.states.values()
        ]
