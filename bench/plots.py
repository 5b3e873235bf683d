"""PNG plots of a run: latency ECDF, stacked stage medians, frame time series with freezes.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never
pyplot, so plotting holds no global state and needs no display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cloudarcade.stages import DECODE_END, STAGE_NAMES

from .analysis import find_freezes, frame_gaps
from .records import FrameRecord, ProbeRecord
from .summary import ProfileSummary

ECDF_PNG = "ecdf.png"
STAGES_PNG = "stages.png"
TIMESERIES_PNG = "timeseries.png"
LINK_PNG = "link.png"
MAX_SERIES = 8  # time-series panels; more would be unreadable


_R = TypeVar("_R", ProbeRecord, FrameRecord)


def _group(records: Sequence[_R]) -> dict[str, list[_R]]:
    out: dict[str, list[_R]] = {}
    for r in records:
        out.setdefault(f"{r.profile} {r.cell}", []).append(r)
    return out


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return Path(path)


def plot_ecdf(probes: Sequence[ProbeRecord], path: str | os.PathLike[str]) -> Path:
    """ECDF of input_to_photon per (profile, cell). Misses keep the curve below 1:
    the gap at the top is the miss rate."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for label, group in _group(probes).items():
        delays = np.sort([p.input_to_photon for p in group if p.input_to_photon is not None])
        if delays.size == 0:
            continue
        y = np.arange(1, delays.size + 1) / len(group)
        misses = len(group) - delays.size
        ax.step(delays * 1000, y, where="post", label=f"{label} ({misses} missed)")
    ax.set_xlabel("input to photon (ms)")
    ax.set_ylabel("fraction of probes")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small")
    ax.set_title("input-to-photon ECDF")
    return _save(fig, path)


def plot_stages(summaries: Sequence[ProfileSummary], path: str | os.PathLike[str]) -> Path:
    """Stacked horizontal bars of the stage medians per summary, with the end-to-end median."""
    fig = Figure(figsize=(9, 1.5 + 0.6 * max(1, len(summaries))))
    ax = fig.add_subplot()
    labels = [f"{s.profile} {s.cell} ({s.client} {s.stack})" for s in summaries]
    y = np.arange(len(summaries))
    left = np.zeros(len(summaries))
    colors = list(matplotlib.colormaps["tab20"](np.linspace(0, 1, len(STAGE_NAMES))))
    for stage, color in zip(STAGE_NAMES, colors, strict=True):
        widths = np.array([s.stage_medians.get(stage, 0.0) * 1000 for s in summaries])
        if stage == "unaccounted":
            widths = np.maximum(widths, 0.0)  # a negative remainder cannot be drawn
        if not widths.any():
            continue
        ax.barh(y, widths, left=left, color=color, label=stage)
        left += widths
    e2e = [s.latency.p50.value for s in summaries]
    for i, value in enumerate(e2e):
        if value is not None:
            ax.plot([value * 1000] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("median per stage (ms); black bar: end-to-end p50")
    ax.legend(fontsize="x-small", ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.set_title("stage medians")
    return _save(fig, path)


def plot_timeseries(
    frames: Sequence[FrameRecord],
    probes: Sequence[ProbeRecord],
    path: str | os.PathLike[str],
) -> Path:
    """Per (profile, cell): frame intervals and probe latency over time, freezes shaded."""
    frame_groups = _group(frames)
    probe_groups = _group(probes)
    labels = list(dict.fromkeys([*frame_groups, *probe_groups]))[:MAX_SERIES]
    fig = Figure(figsize=(10, 2.2 * max(1, len(labels)) + 0.5))
    for i, label in enumerate(labels, start=1):
        ax = fig.add_subplot(max(1, len(labels)), 1, i)
        times = sorted(
            f.timestamps[DECODE_END]
            for f in frame_groups.get(label, [])
            if f.decoded and DECODE_END in f.timestamps
        )
        start = times[0] if times else 0.0
        if len(times) >= 2:
            gaps = frame_gaps(times)
            ends = np.array(times[1:]) - start
            ax.step(ends, gaps * 1000, where="pre", linewidth=0.7, label="frame interval")
            for at, duration in find_freezes(times):
                ax.axvspan(at - start, at - start + duration, color="red", alpha=0.25)
        group = probe_groups.get(label, [])
        sent = [(p.timestamps.get("input_sent"), p.input_to_photon) for p in group]
        points = [(t, d) for t, d in sent if t is not None and d is not None]
        if points:
            t0 = start if times else min(t for t, _ in points)
            xs, ys = zip(*points, strict=True)
            ax.scatter(np.array(xs) - t0, np.array(ys) * 1000, s=4, color="C1", label="probe delay")
        ax.set_ylabel("ms")
        ax.set_title(f"{label} (red: freezes)", fontsize="small")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small", loc="upper right")
    if labels:
        fig.axes[-1].set_xlabel("time since first frame (s)")
    fig.tight_layout()
    return _save(fig, path)


def plot_link(summaries: Sequence[ProfileSummary], path: str | os.PathLike[str]) -> Path | None:
    """Per (profile, cell) with a capacity: capacity, each stack's target and delivered rate.

    None when no summary has a link series (no profile with a rate limit).
    """
    groups: dict[str, list[ProfileSummary]] = {}
    for s in summaries:
        if s.link.get("series"):
            groups.setdefault(f"{s.profile} {s.cell}", []).append(s)
    if not groups:
        return None
    labels = list(groups)[:MAX_SERIES]
    fig = Figure(figsize=(10, 2.4 * len(labels) + 0.5))
    for i, label in enumerate(labels, start=1):
        ax = fig.add_subplot(len(labels), 1, i)
        for j, s in enumerate(groups[label]):
            rows = np.array([[np.nan if v is None else v for v in row]
                             for row in s.link["series"]], dtype=float)
            if j == 0:
                ax.step(rows[:, 0], rows[:, 1], where="post", color="black", linewidth=1.2,
                        label="capacity")
            colour = f"C{j}"
            if not np.all(np.isnan(rows[:, 2])):
                ax.plot(rows[:, 0], rows[:, 2], color=colour, linestyle="--", linewidth=1,
                        label=f"{s.stack} target")
            ax.plot(rows[:, 0], rows[:, 3], color=colour, linewidth=0.9, alpha=0.8,
                    label=f"{s.stack} delivered")
        ax.set_ylabel("Mbit/s")
        ax.set_title(label, fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper right")
    fig.axes[-1].set_xlabel("time since the client connected (s)")
    fig.tight_layout()
    return _save(fig, path)
