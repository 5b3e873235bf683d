"""A unit of a benchmark run: one (profile, cell, stack, seed), and what it measured.

The local runner and the Ray driver (:mod:`cloudarcade.bench.cluster`) both
run units through :func:`cloudarcade.bench.runner.measure_unit`; a unit's
records go into a :class:`RecordSink`: the stack's JSONL writers in a local
run, a :class:`UnitRecords` that travels back to the driver on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cloudarcade.bench.records import FrameRecord, ProbeRecord
from cloudarcade.bench.scenario import BenchConfig, Cell


@dataclass(frozen=True)
class Unit:
    """One measurement: a client session with its probes, on one server.

    ``client`` is the bench client that measures it (bench/clients.py).
    """

    stack: str
    cell: Cell
    profile: str
    seed: int
    client: str = "headless"

    @property
    def label(self) -> str:
        return f"{self.profile} {self.cell.name} {self.stack} {self.client} seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "cell": self.cell.name, "profile": self.profile,
                "seed": self.seed, "client": self.client}


def plan_units(config: BenchConfig) -> list[Unit]:
    """Every unit of a run, in the order a local run measures them."""
    return [
        Unit(stack, cell, profile, config.seed, client)
        for client in config.clients
        for stack in config.stacks
        for cell in config.cells
        for profile in config.profiles
    ]


class RecordSink(Protocol):
    """Where a unit's records go as they are measured."""

    extras: dict[tuple[str, str], dict[str, Any]]

    def add_probe(self, record: ProbeRecord) -> None: ...

    def add_frame(self, record: FrameRecord) -> None: ...


@dataclass
class UnitRecords:
    """The records of one unit, kept in memory (a cluster unit returns them whole).

    ``node`` holds the facts of the node that measured it
    (:func:`cloudarcade.bench.node.node_facts`); ``timings`` the seconds the
    unit spent starting its server and measuring, on that node's clock.
    """

    unit: Unit
    probes: list[ProbeRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    extras: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    node: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def add_probe(self, record: ProbeRecord) -> None:
        self.probes.append(record)

    def add_frame(self, record: FrameRecord) -> None:
        self.frames.append(record)

    def replay(self, sink: RecordSink) -> None:
        """Hand every record to ``sink`` (the driver's JSONL writers)."""
        for probe in self.probes:
            sink.add_probe(probe)
        for frame in self.frames:
            sink.add_frame(frame)
        sink.extras.update(self.extras)
