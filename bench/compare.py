"""What changed between two runs, with confidence.

For each (profile, cell) present in both runs: p50/p95/p99 before and after,
a bootstrap CI of the difference of medians (B - A), a verdict, and the stage
medians that moved most. Misses rank above every delay, as in the summary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from .analysis import (
    MISS_SENTINEL,
    bootstrap_ci,
    delays_with_misses,
    group_by_key,
    measured_or_none,
    miss_count,
    quantile_statistic,
    stage_medians,
)
from .jsonl import PROBES_FILE, read_probes
from .records import ProbeRecord
from .summary import Estimate
from .table import ms

FASTER: Final = "faster"
SLOWER: Final = "slower"
NO_CHANGE: Final = "no significant change"
TOP_STAGES: Final = 3


@dataclass(slots=True)
class Change:
    """The change of one (profile, cell) from run A to run B (seconds; B - A)."""

    profile: str
    cell: str
    count_a: int
    count_b: int
    misses_a: int
    misses_b: int
    # name → (A, B); None where the percentile fell among the misses.
    percentiles: dict[str, tuple[float | None, float | None]]
    median_diff: Estimate
    verdict: str
    # (stage, median A, median B) of the stages that moved most, largest first.
    stage_moves: list[tuple[str, float, float]] = field(default_factory=list)


def _median_diff(a: Any, b: Any, axis: int = -1) -> Any:
    median = quantile_statistic(0.5)
    return median(b, axis=axis) - median(a, axis=axis)


def compare_records(
    probes_a: Sequence[ProbeRecord],
    probes_b: Sequence[ProbeRecord],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[Change]:
    """:func:`compare` on records already read (sans-I/O)."""
    groups_a = group_by_key(probes_a)
    groups_b = group_by_key(probes_b)
    out = []
    for key in (k for k in groups_a if k in groups_b):
        a, b = groups_a[key], groups_b[key]
        da, db = delays_with_misses(a), delays_with_misses(b)
        percentiles = {
            name: (
                measured_or_none(float(quantile_statistic(q)(da))),
                measured_or_none(float(quantile_statistic(q)(db))),
            )
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        point = float(_median_diff(da, db))
        low, high = bootstrap_ci(
            [da, db], _median_diff, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
        if low > 0:
            verdict = SLOWER
        elif high < 0:
            verdict = FASTER
        else:
            verdict = NO_CHANGE
        # A difference that involves a miss sentinel is not a time; say so with None.
        diff = Estimate(*(None if abs(v) >= MISS_SENTINEL / 2 else v for v in (point, low, high)))
        out.append(
            Change(
                profile=key[0],
                cell=key[1],
                count_a=len(a),
                count_b=len(b),
                misses_a=miss_count(da),
                misses_b=miss_count(db),
                percentiles=percentiles,
                median_diff=diff,
                verdict=verdict,
                stage_moves=_stage_moves(a, b),
            )
        )
    return out


def _stage_moves(
    a: Sequence[ProbeRecord], b: Sequence[ProbeRecord]
) -> list[tuple[str, float, float]]:
    ma = stage_medians(p.timestamps for p in a if not p.missed)
    mb = stage_medians(p.timestamps for p in b if not p.missed)
    # Only stages that moved by at least 0.1 ms are worth naming.
    moves = [(name, ma[name], mb[name]) for name in ma
             if name in mb and abs(mb[name] - ma[name]) >= 1e-4]
    moves.sort(key=lambda m: abs(m[2] - m[1]), reverse=True)
    return moves[:TOP_STAGES]


def compare(
    dir_a: str | os.PathLike[str],
    dir_b: str | os.PathLike[str],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[Change]:
    """Compare the ``probes.jsonl`` of two results directories (A = before, B = after)."""
    probes_a, _ = read_probes(os.path.join(dir_a, PROBES_FILE))
    probes_b, _ = read_probes(os.path.join(dir_b, PROBES_FILE))
    return compare_records(
        probes_a, probes_b, confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def _pair(pair: tuple[float | None, float | None]) -> str:
    a, b = pair
    text = f"{ms(a) if a is not None else 'miss'} → {ms(b) if b is not None else 'miss'}"
    if a and b:
        text += f" ({b / a:.2f}x)"
    return text


def render_changes(changes: Sequence[Change]) -> Table:
    """A rich table of the changes."""
    table = Table(title="B vs A: input to photon (ms)", header_style="bold")
    for name in ("profile", "cell", "p50", "p95", "p99", "median B-A [95% CI]", "verdict",
                 "stages that moved most", "misses"):
        table.add_column(name, no_wrap=name in ("profile", "verdict"))
    styles = {FASTER: "green", SLOWER: "red", NO_CHANGE: "dim"}
    for c in changes:
        d = c.median_diff
        diff = (
            "-" if d.value is None
            else f"{ms(d.value, 2)} [{ms(d.low, 2)}, {ms(d.high, 2)}]"
        )
        stages = ", ".join(f"{n} {ms(x, 2)}→{ms(y, 2)}" for n, x, y in c.stage_moves)
        table.add_row(
            c.profile, c.cell, _pair(c.percentiles["p50"]), _pair(c.percentiles["p95"]),
            _pair(c.percentiles["p99"]), diff, f"[{styles[c.verdict]}]{c.verdict}[/]",
            stages or "-", f"{c.misses_a} → {c.misses_b}",
        )
    return table


def print_changes(changes: Sequence[Change], console: Console | None = None) -> None:
    """Print the changes (or say that the runs share no (profile, cell))."""
    console = console or Console()
    if not changes:
        console.print("no (profile, cell) is present in both runs")
        return
    console.print(render_changes(changes))
