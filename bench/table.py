"""The summary table: one row per (profile, cell), for the terminal (rich) and the report.

The columns are defined once here (:func:`table_rows`) so the terminal table
and the HTML report show the same figures under the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich import box
from rich.table import Table

from .summary import Estimate, ProfileSummary

STOCK: Final = "stock"
PAGE_P50: Final = "page_measure_p50_ms"


def ms(value: float | None, digits: int = 1) -> str:
    """Seconds as milliseconds text; ``None`` as a dash."""
    return "-" if value is None else f"{value * 1000:.{digits}f}"


def estimate_text(est: Estimate, *, with_ci: bool = True) -> str:
    """``"12.3 [11.9, 12.8]"`` in ms; ``"miss"`` for a value or bound among the misses."""
    if est.value is None:
        return "miss"
    if not with_ci:
        return ms(est.value)

    def bound(value: float | None) -> str:
        return "miss" if value is None else ms(value)

    return f"{ms(est.value)} [{bound(est.low)}, {bound(est.high)}]"


def baseline_ratios(
    summaries: Sequence[ProfileSummary],
) -> dict[tuple[str, str, str, str], dict[str, float]]:
    """For each non-stock summary with a ``stack="stock"`` twin (same profile, cell
    and client): our p50 and p99 divided by stock's. Below 1 means we are faster."""
    stock = {(s.key, s.client): s for s in summaries if s.stack == STOCK}
    out: dict[tuple[str, str, str, str], dict[str, float]] = {}
    for s in summaries:
        base = stock.get((s.key, s.client))
        if s.stack == STOCK or base is None:
            continue
        ratios: dict[str, float] = {}
        for name in ("p50", "p99"):
            ours = getattr(s.latency, name).value
            theirs = getattr(base.latency, name).value
            if ours is not None and theirs:
                ratios[name] = ours / theirs
        out[_ratio_key(s)] = ratios
    return out


def table_rows(
    summaries: Sequence[ProfileSummary],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table, as text. The ratio columns appear
    only when some summary has a stock baseline."""
    ratios = baseline_ratios(summaries)
    header = [
        "profile", "cell", "client", "stack", "probes", "misses",
        "p50 ms [95% CI]", "p95 ms [95% CI]", "p99 ms [95% CI]", "max ms",
        "fps", "harmonic fps", "freezes", "frozen s", "dropped",
        "Mbit/s", "loss %", "PSNR dB", "SSIM", "MOS",
    ]
    if ratios:
        header += ["p50 / stock", "p99 / stock"]
    # The chromium client also runs the page's own "Measure latency" (its p50 in ms).
    page = any(s.extra.get(PAGE_P50) is not None for s in summaries)
    if page:
        header.append("page p50 ms")
    # A cluster run (bench --cluster) says where each row was measured.
    nodes = any("node" in s.extra for s in summaries)
    if nodes:
        header.append("node")
    rows: list[list[str]] = []
    for s in summaries:
        lat, t = s.latency, s.timing
        row = [
            s.profile, s.cell, s.client, s.stack, str(lat.count), str(lat.misses),
            estimate_text(lat.p50), estimate_text(lat.p95), estimate_text(lat.p99),
            estimate_text(lat.max, with_ci=False),
            _num(t.fps), _num(t.harmonic_fps), str(t.freeze_count), f"{t.freeze_total:.2f}",
            str(sum(s.drops_by_phase.values())),
            _num(None if s.bitrate_bps is None else s.bitrate_bps / 1e6, 2),
            _num(None if s.packet_loss is None else s.packet_loss * 100, 2),
            _num(s.psnr_mean), _num(s.ssim_mean, 3), _num(s.mos, 2),
        ]
        if ratios:
            r = ratios.get(_ratio_key(s), {}) if s.stack != STOCK else {}
            row += [_num(r.get("p50"), 2), _num(r.get("p99"), 2)]
        if page:
            row.append(_num(s.extra.get(PAGE_P50)))
        if nodes:
            row.append(node_text(s))
        rows.append(row)
    return header, rows


def node_text(summary: ProfileSummary) -> str:
    """Where a cluster row was measured; flagged when its host was shared with another
    bench node (``--allow-shared-host``: the measurement may have shared cores)."""
    node = str(summary.extra.get("node", "-"))
    return f"{node} SHARED HOST" if summary.extra.get("shared_host") else node


_SHORT = {
    "p50 ms [95% CI]": "p50 ms", "p95 ms [95% CI]": "p95 ms", "p99 ms [95% CI]": "p99 ms",
    "probes": "n", "p50 / stock": "×stock", "page p50 ms": "page p50", "freezes": "frz",
    "misses": "miss",
}

# The columns the terminal table keeps (the report has them all).
TERMINAL_COLUMNS = (
    "profile", "cell", "client", "stack", "probes", "misses", "p50 ms [95% CI]",
    "p95 ms [95% CI]", "p99 ms [95% CI]", "fps", "freezes", "Mbit/s", "loss %", "MOS",
    "p50 / stock", "page p50 ms", "node",
)


def _ratio_key(s: ProfileSummary) -> tuple[str, str, str, str]:
    """Ratios are per (profile, cell) and client (a browser's against stock in the
    browser), one per stack variant (each congestion controller against stock)."""
    return (s.profile, s.cell, s.client, s.stack)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(summaries: Sequence[ProfileSummary], title: str | None = None) -> Table:
    """A rich table of the summaries, for the terminal: the key columns only.

    The cell column is left out when every row has the same cell; it goes
    into the title instead.
    """
    full_header, full_rows = table_rows(summaries)
    keep = [i for i, name in enumerate(full_header) if name in TERMINAL_COLUMNS]
    cells = {s.cell for s in summaries}
    if len(cells) == 1:
        keep.remove(full_header.index("cell"))
        title = title or f"input-to-photon by profile ({next(iter(cells))})"
    # Values only: the confidence intervals are in summary.json and the report.
    header = [_SHORT.get(full_header[i], full_header[i]) for i in keep]
    rows = [[row[i].split(" [")[0] for i in keep] for row in full_rows]
    table = Table(title=title or "input-to-photon by profile", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name in header:
        text = name in ("profile", "cell", "client", "stack")
        table.add_column(name, justify="left" if text else "right", no_wrap=text)
    for row in rows:
        table.add_row(*row)
    return table
