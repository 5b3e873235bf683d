"""The report of a run: PNG plots and one self-contained ``report.html``.

It only reads files from a results directory (``probes.jsonl``,
``frames.jsonl``, ``summary.json``, ``metadata.json``, optionally
``calibration.json``) and writes the plots and the page next to them. The page
embeds the plots as base64 data URIs, so it can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from .analysis import summarize_all
from .jsonl import FRAMES_FILE, PROBES_FILE, read_frames, read_probes
from .plots import (
    ECDF_PNG,
    LINK_PNG,
    STAGES_PNG,
    TIMESERIES_PNG,
    plot_ecdf,
    plot_link,
    plot_stages,
    plot_timeseries,
)
from .records import FrameRecord, ProbeRecord
from .summary import SUMMARY_FILE, ProfileSummary, read_summary
from .table import ms, table_rows
from .tails import SlowProbe

logger = logging.getLogger(__name__)

METADATA_FILE: Final = "metadata.json"
CALIBRATION_FILE: Final = "calibration.json"
REPORT_FILE: Final = "report.html"


@dataclass
class RunResults:
    """What a results directory holds (absent files give empty values)."""

    path: Path
    probes: list[ProbeRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    summaries: list[ProfileSummary] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    skipped_lines: int = 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read a results directory. Without ``summary.json`` the summaries are
    computed from the JSONL files (default bootstrap settings)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: not a results directory")
    out = RunResults(root)
    if (root / PROBES_FILE).exists():
        out.probes, skipped = read_probes(root / PROBES_FILE)
        out.skipped_lines += skipped
    if (root / FRAMES_FILE).exists():
        out.frames, skipped = read_frames(root / FRAMES_FILE)
        out.skipped_lines += skipped
    if (root / SUMMARY_FILE).exists():
        out.summaries = read_summary(root / SUMMARY_FILE)
    else:
        out.summaries = summarize_all(out.probes, out.frames)
    return read_notes(out)


def read_notes(results: RunResults) -> RunResults:
    """Fill in ``metadata`` and ``calibration`` from the files in ``results.path``, if there.

    For results whose records are already in memory (the runner's): only these
    small files need reading before :func:`write_report_for`.
    """
    root = results.path
    if (root / METADATA_FILE).exists():
        results.metadata = dict(_read_json(root / METADATA_FILE))
    if (root / CALIBRATION_FILE).exists():
        results.calibration = dict(_read_json(root / CALIBRATION_FILE))
    return results


def write_plots(results: RunResults, out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write ``ecdf.png``, ``stages.png`` and ``timeseries.png``; return their paths."""
    target = Path(out_dir) if out_dir is not None else results.path
    paths = [
        plot_ecdf(results.probes, target / ECDF_PNG),
        plot_stages(results.summaries, target / STAGES_PNG),
        plot_timeseries(results.frames, results.probes, target / TIMESERIES_PNG),
    ]
    link = plot_link(results.summaries, target / LINK_PNG)
    return paths if link is None else [*paths, link]


def write_report(
    path: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the plots and ``report.html`` into the results directory ``path``.

    ``baseline``: another results directory (a ``--stack stock`` run) whose
    summaries are added to the table, so the ratio columns appear. Stock
    summaries in ``path``'s own ``summary.json`` serve the same way.
    """
    base = None if baseline is None else load_results(baseline)
    return write_report_for(load_results(path), baseline=base)


def write_report_for(results: RunResults, *, baseline: RunResults | None = None) -> Path:
    """:func:`write_report` of results already in memory; neither is modified."""
    if baseline is not None:
        results = replace(
            results,
            summaries=[*results.summaries,
                       *(replace(s, stack="stock") for s in baseline.summaries)],
            # Into the ECDF too, under their own label.
            probes=[*results.probes,
                    *(replace(p, profile=f"{p.profile} [stock]") for p in baseline.probes)],
        )
    images = write_plots(results)
    page = render_html(results, images)
    out = results.path / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    logger.info("wrote %s", out)
    return out


def _link_table(summaries: list[ProfileSummary]) -> str:
    header = ["profile", "cell", "stack", "capacity Mbit/s", "delivered Mbit/s",
              "target p50 Mbit/s", "queueing p50/p95/max ms", "frame delay p50/p95/p99 ms",
              "freezes", "capacity steps", "rungs (s shown)"]
    rows = []
    for s in summaries:
        link = s.link
        if not link:
            continue
        q, d = link.get("queueing_ms", {}), link.get("frame_delay_ms", {})
        steps = "; ".join(
            f"{st['from_mbps']:g}→{st['to_mbps']:g} at {st['t']:g} s: "
            + (f"drained in {_num(st.get('drain_s'))} s" if "drain_s" in st
               else f"recovered in {_num(st.get('recover_s'))} s")
            for st in link.get("steps", [])
        )
        rows.append([
            s.profile, s.cell, s.stack, _num(link.get("capacity_mbps")),
            _num(link.get("achieved_mbps")), _num(link.get("target_mbps_p50")),
            f"{_num(q.get('p50'))} / {_num(q.get('p95'))} / {_num(q.get('p100'))}",
            f"{_num(d.get('p50'))} / {_num(d.get('p95'))} / {_num(d.get('p99'))}",
            str(s.timing.freeze_count), steps or "-",
            ", ".join(f"{r} {t:g}" for r, t in link.get("rung_s", {}).items()) or "-",
        ])
    return _table_html(header, rows, "link")


def _slowest_table(summaries: list[ProfileSummary]) -> str:
    header = ["profile", "client", "stack", "probe", "input-to-photon ms", "input at s",
              "link Mbit/s", "over the run's stage medians"]
    rows = []
    for s in summaries:
        for row in s.slowest:
            slow = SlowProbe.from_dict(row)
            rows.append([
                s.profile, s.client, s.stack, str(slow.probe), f"{slow.input_to_photon_ms:.1f}",
                _num(slow.at_s), _num(slow.capacity_mbps), slow.describe(),
            ])
    return _table_html(header, rows, "slowest")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:g}"


def write_run_report(
    out: Path, runs: dict[str, RunResults], calibration: dict[str, Any] | None = None
) -> Path:
    """One report of every (client, stack) of a run, in ``out``.

    Every summary goes into the table (its client and stack in their columns);
    the probes of all but the headless tuned run are labelled in the plots
    (``[stock]``, ``[chromium]``, ``[chromium/stock]``). The frame plots are the
    first run's.
    """
    first = next(iter(runs.values()))
    probes = []
    for key, run in runs.items():
        label = key.removesuffix("/tuned")
        probes += run.probes if key == "tuned" else [
            replace(p, profile=f"{p.profile} [{label}]") for p in run.probes]
    combined = RunResults(
        out, probes=probes, frames=first.frames,
        summaries=[s for run in runs.values() for s in run.summaries],
    )
    combined = read_notes(combined)
    if calibration is not None:
        combined.calibration = calibration
    return write_report_for(combined)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table_html(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv_html(data: dict[str, Any]) -> str:
    rows = [
        [str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True)]
        for k, v in data.items()
    ]
    return _table_html(["key", "value"], rows, "kv")


def _stage_table(summaries: list[ProfileSummary]) -> str:
    names = list(dict.fromkeys(n for s in summaries for n in s.stage_medians))
    header = ["profile", "cell", "client", "stack", *names, "sum", "e2e p50", "sum - e2e"]
    rows = []
    for s in summaries:
        c = s.stage_check
        rows.append(
            [s.profile, s.cell, s.client, s.stack]
            + [ms(s.stage_medians.get(n), 2) for n in names]
            + [ms(c.sum_of_medians, 2), ms(c.end_to_end_median, 2), ms(c.discrepancy, 2)]
        )
    return _table_html(header, rows, "stages")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
table.kv td { text-align: left; font-family: monospace; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""


def render_html(results: RunResults, images: list[Path]) -> str:
    """The page, as a string. Every value is escaped; images are data URIs."""
    e = html.escape
    header, rows = table_rows(results.summaries)
    title = f"cloudarcade bench: {results.path.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<h2>Summary</h2>",
        _table_html(header, rows, "summary"),
        '<p class="note">input_to_photon = photon - input_sent, in ms, with bootstrap 95% '
        "confidence intervals (percentile method). Misses rank above every delay; "
        '"miss" means the percentile fell among them. MOS: a G.1072-style estimate '
        "(see docs/bench.md for the formulas used and where they are approximated).</p>",
    ]
    if results.skipped_lines:
        parts.append(
            f'<p class="note">{results.skipped_lines} truncated JSONL line(s) skipped '
            "(the run was interrupted).</p>"
        )
    parts += ["<h2>Latency</h2>"]
    parts += [f'<img alt="{e(p.stem)}" src="{_data_uri(p)}">' for p in images]
    parts += ["<h2>The link: bitrate, capacity, queueing, recovery</h2>",
              _link_table(results.summaries),
              '<p class="note">queueing: each frame\'s last-packet trip above its 2nd '
              "percentile; a step down is drained when every frame's queueing stays under "
              "30 ms; a step up is recovered when the delivered bitrate (0.5 s windows) "
              "reaches 80 % of the configured bitrate (docs/congestion.md).</p>"]
    parts += ["<h2>The slowest probes</h2>", _slowest_table(results.summaries),
              '<p class="note">Each stage over the same run\'s median for it by 5 ms or more, '
              "largest first; input at: seconds from the link's origin (the link plot's "
              "axis); link: the downlink's capacity while the frame was on the way. "
              "<code>python -m cloudarcade.bench.tails OUT --count N</code> prints more.</p>"]
    parts += ["<h2>Stage medians (ms)</h2>", _stage_table(results.summaries)]
    parts.append(
        '<p class="note">Medians do not add exactly (the median of a sum is not the sum of '
        "medians); a large difference means missing stamps or disagreeing clocks.</p>"
    )
    if results.calibration is not None:
        parts += ["<h2>Calibration</h2>", _kv_html(results.calibration)]
    parts += ["<h2>Run metadata</h2>", _kv_html(results.metadata or {"metadata": "none"})]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
