"""The slowest probes of a run, and where their extra time went.

A p99 over 100 probes is about the second-worst probe, so one network event
(a handover's stall, a capacity step) that two probes happen to meet decides
it. This module names, for each of the slowest probes, the stages that took
longer than usual and by how much: each stage's time minus the same run's
median for that stage (``stage_medians``), largest first. It adds when the
probe's input left (seconds from the link's origin, the time axis of the
link table and plot; the position in a looped trace is that modulo its
period), the downlink capacity while its frame was on the way (from the
profile's rate or trace), and the frames right before the one that showed the
input that were never shown, by why (skipped at the source, lost, not
decoded): the input's first frames may be among them, and then its wait
shows as ``tick_wait``, which runs to the frame that was shown.

Pure functions of records; the command reads a results directory::

    python -m cloudarcade.bench.tails OUT [--count 5]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from cloudarcade.stages import (
    ENCODE_END,
    FRAME_COMPLETE,
    INPUT_SENT,
    STAGES,
    stage_durations,
)

from .linkcap import Capacity
from .records import FrameRecord, ProbeRecord

DEFAULT_COUNT: Final = 5
# A stage over its median by less than this is not named as a cause.
NOTABLE_S: Final = 0.005
_STAGE_NAMES: Final = frozenset(name for name, _, _ in STAGES)  # not "unaccounted"


@dataclass(frozen=True)
class SlowProbe:
    """One of the slowest probes of a (profile, cell, stack).

    ``excess_ms``: stage → milliseconds over that stage's median in the run,
    only stages at least :data:`NOTABLE_S` over, largest first. ``at_s``: when
    the input left, seconds from the link's origin (``None`` without one).
    ``capacity_mbps``: the downlink's mean capacity from the frame's encoding
    to its completion (``None`` for an unlimited link). ``unshown_before``:
    the frames right before the one that showed the input that were never
    shown, counted by drop phase (``encode_skip``, ``network``, ``decode``,
    ``unknown``).
    """

    probe: int
    input_to_photon_ms: float
    excess_ms: dict[str, float]
    at_s: float | None = None
    capacity_mbps: float | None = None
    unshown_before: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlowProbe:
        return cls(
            probe=int(data["probe"]),
            input_to_photon_ms=float(data["input_to_photon_ms"]),
            excess_ms={str(k): float(v) for k, v in dict(data.get("excess_ms", {})).items()},
            at_s=None if data.get("at_s") is None else float(data["at_s"]),
            capacity_mbps=(None if data.get("capacity_mbps") is None
                           else float(data["capacity_mbps"])),
            unshown_before={str(k): int(v)
                            for k, v in dict(data.get("unshown_before", {})).items()},
        )

    def describe(self) -> str:
        """The causes in one line: ``tick_wait +62 ms, 4 frame(s) before it not shown
        (encode_skip 4)``."""
        parts = [f"{name} +{ms:.0f} ms" for name, ms in self.excess_ms.items()]
        if self.unshown_before:
            why = ", ".join(f"{phase} {n}" for phase, n in self.unshown_before.items())
            parts.append(f"{sum(self.unshown_before.values())} frame(s) before it "
                         f"not shown ({why})")
        return ", ".join(parts) or "no stage notably over its median"


def slowest_probes(
    probes: Sequence[ProbeRecord],
    frames: Sequence[FrameRecord],
    medians: Mapping[str, float],
    *,
    origin: float | None = None,
    capacity: Capacity | None = None,
    count: int = DEFAULT_COUNT,
) -> list[SlowProbe]:
    """The ``count`` slowest measured probes, slowest first (misses are counted
    elsewhere: they have no stages to blame)."""
    if count < 0:
        raise ValueError(f"count {count}: expected 0 or more")
    measured = [p for p in probes if not p.missed and p.input_to_photon is not None]
    measured.sort(key=lambda p: -(p.input_to_photon or 0.0))
    unshown = {f.frame_id: f.drop_phase or "unknown" for f in frames if not f.decoded}
    return [_slow(p, medians, origin, capacity, unshown) for p in measured[:count]]


def _slow(
    probe: ProbeRecord,
    medians: Mapping[str, float],
    origin: float | None,
    capacity: Capacity | None,
    unshown: Mapping[int, str],
) -> SlowProbe:
    stamps = probe.timestamps
    excess = {
        name: (seconds - medians[name]) * 1000
        for name, seconds in stage_durations(stamps).items()
        if name in _STAGE_NAMES and name in medians and seconds - medians[name] >= NOTABLE_S
    }
    ordered = dict(sorted(excess.items(), key=lambda kv: -kv[1]))
    at = None
    if origin is not None and INPUT_SENT in stamps:
        at = stamps[INPUT_SENT] - origin
    link = None
    if capacity is not None and origin is not None and ENCODE_END in stamps:
        end = stamps.get(FRAME_COMPLETE, stamps[ENCODE_END])
        link = capacity.mean(stamps[ENCODE_END] - origin, end - origin) / 1e6
    before: Counter[str] = Counter()
    if probe.frame_id is not None:
        frame_id = probe.frame_id - 1
        while frame_id in unshown:
            before[unshown[frame_id]] += 1
            frame_id -= 1
    return SlowProbe(
        probe=probe.probe,
        input_to_photon_ms=round((probe.input_to_photon or 0.0) * 1000, 1),
        excess_ms={k: round(v, 1) for k, v in ordered.items()},
        at_s=None if at is None else round(at, 3),
        capacity_mbps=None if link is None else round(link, 2),
        unshown_before=dict(before),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print each (profile, cell, stack)'s slowest probes from a results directory."""
    from rich.console import Console
    from rich.table import Table

    from .linkstats import profile_capacity
    from .report import load_results

    parser = argparse.ArgumentParser(
        prog="python -m cloudarcade.bench.tails",
        description="The slowest probes of a bench run and the stages that made them slow.",
    )
    parser.add_argument("out", type=Path, help="a results directory (cloudarcade bench --out)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"probes per profile (default {DEFAULT_COUNT})")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count {args.count}: expected 1 or more")
    console = Console()
    runs = sorted({p.parent for p in args.out.rglob("probes.jsonl")})
    if not runs:
        print(f"no probes.jsonl under {args.out}: expected the --out directory "
              "of a cloudarcade bench run", file=sys.stderr)
        return 2
    for run_dir in runs:
        try:
            results = load_results(run_dir)
        except ValueError as exc:
            print(f"cannot read {run_dir}: {exc}", file=sys.stderr)
            return 2
        for summary in results.summaries:
            origin = summary.extra.get("link_origin")
            slow = slowest_probes(
                [p for p in results.probes if (p.profile, p.cell) == summary.key],
                [f for f in results.frames if (f.profile, f.cell) == summary.key],
                summary.stage_medians,
                origin=None if origin is None else float(origin),
                capacity=profile_capacity(summary.profile),
                count=args.count,
            )
            table = Table(title=f"{summary.profile} · {summary.cell} · {summary.stack} · "
                                f"{summary.client} ({run_dir})")
            for column in ("probe", "ms", "input at s", "link Mbit/s"):
                table.add_column(column, justify="right")
            table.add_column("over the run's stage medians")
            for row in slow:
                table.add_row(
                    str(row.probe), f"{row.input_to_photon_ms:.1f}",
                    "-" if row.at_s is None else f"{row.at_s:.2f}",
                    "-" if row.capacity_mbps is None else f"{row.capacity_mbps:g}",
                    row.describe(),
                )
            console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
