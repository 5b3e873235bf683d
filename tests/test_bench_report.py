"""Reports and comparisons from results directories of synthetic records."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
from rich.console import Console

from cloudarcade.bench.analysis import summarize_all
from cloudarcade.bench.compare import FASTER, NO_CHANGE, SLOWER, compare, print_changes
from cloudarcade.bench.jsonl import JsonlWriter
from cloudarcade.bench.records import FrameRecord, ProbeRecord
from cloudarcade.bench.report import write_report
from cloudarcade.bench.summary import write_summary
from cloudarcade.bench.table import render_table, table_rows
from cloudarcade.stages import TIMESTAMPS

CELL = "h264-1280x720-60fps-8M"


def make_run(
    root: Path,
    *,
    seed: int,
    scale: float = 1.0,
    profiles: tuple[str, ...] = ("ideal", "lte"),
    stack: str = "cloudarcade",
    n: int = 300,
) -> Path:
    """A results directory as the runner writes it, from a seeded synthetic model:
    13 stages with lognormal durations (times ``scale``), 60 fps frames with freezes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    probes: list[ProbeRecord] = []
    frames: list[FrameRecord] = []
    for k, profile in enumerate(profiles):
        base = 0.0015 * (1 + k) * scale
        for i in range(n):
            t = 1000.0 + i * 0.05
            stamps = {TIMESTAMPS[0]: t}
            for name in TIMESTAMPS[1:]:
                t += float(rng.lognormal(np.log(base), 0.3))
                stamps[name] = t
            missed = i % 97 == 96
            probes.append(
                ProbeRecord(
                    profile, CELL, i, i,
                    {k: v for k, v in stamps.items() if not (missed and k == "photon")},
                    None if missed else stamps["photon"] - stamps["input_sent"],
                    missed,
                    None if missed else i,
                )
            )
        t = 1000.0
        for f in range(600):
            t += 0.4 if f in (200, 450) else float(rng.normal(1 / 60, 0.001))
            dropped = f % 150 == 149
            frames.append(
                FrameRecord(
                    profile, CELL, f, None,
                    {"tick_start": t - 0.01, "encode_end": t - 0.006, "decode_end": t},
                    16_000, f % 60 == 0, not dropped, "network" if dropped else None,
                )
            )
    with JsonlWriter(root / "probes.jsonl") as w:
        w.write_all(probes)
    with JsonlWriter(root / "frames.jsonl") as w:
        w.write_all(frames)
    extra = {"stack": stack, "resolution": "1280x720", "fps": 60, "packet_loss": 0.002}
    extras = {(p, CELL): extra for p in profiles}
    write_summary(root / "summary.json", summarize_all(probes, frames, extras, n_resamples=300))
    (root / "metadata.json").write_text(json.dumps({"seed": seed, "args": {"probes": n}}))
    return root


def test_report_writes_plots_and_a_self_contained_page(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", seed=1)
    (run / "calibration.json").write_text(json.dumps({"added_ms": 20, "error_ms": 0.7}))
    page_path = write_report(run)
    for name in ("ecdf.png", "stages.png", "timeseries.png"):
        data = (run / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
    page = page_path.read_text()
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 3
    assert all(base64.b64decode(u).startswith(b"\x89PNG") for u in uris)
    assert "<table" in page and CELL in page and "ideal" in page and "lte" in page
    assert "p99 ms [95% CI]" in page and "Calibration" in page and "error_ms" in page
    assert "stock" not in page.split("Run metadata")[0].lower().replace("aiortc", "")


def test_report_shows_ratio_to_a_stock_baseline(tmp_path: Path) -> None:
    ours = make_run(tmp_path / "ours", seed=2, profiles=("ideal",))
    stock = make_run(tmp_path / "stock", seed=3, scale=3.0, profiles=("ideal",), stack="stock")
    page = write_report(ours, baseline=stock).read_text()
    assert "p50 / stock" in page
    ratio = re.search(r"<td>cloudarcade</td>(?:<td>[^<]*</td>){16}<td>(0\.\d+)</td>", page)
    assert ratio is not None and 0.2 < float(ratio.group(1)) < 0.5


def test_terminal_table(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", seed=4, n=100)
    from cloudarcade.bench.summary import read_summary

    summaries = read_summary(run / "summary.json")
    console = Console(record=True, width=400)
    console.print(render_table(summaries))
    text = console.export_text()
    # The terminal keeps the key columns; the full set is in the report.
    assert "ideal" in text and "lte" in text and "p50 ms" in text and "MOS" in text
    assert "harmonic fps" not in text
    header, rows = table_rows(summaries)
    assert "harmonic fps" in header
    lte = summaries[1]
    assert lte.timing.freeze_count == 2 and lte.drops_by_phase == {"network": 4}
    assert lte.latency.misses == 1 and lte.mos is not None
    p99 = header.index("p99 ms [95% CI]")
    assert rows[1][p99].endswith(", miss]")  # p99's upper bound among the misses


def test_compare_flags_a_twofold_slowdown(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", seed=5)
    b = make_run(tmp_path / "b", seed=6, scale=2.0)
    changes = compare(a, b, n_resamples=500)
    assert [(c.profile, c.verdict) for c in changes] == [("ideal", SLOWER), ("lte", SLOWER)]
    p50a, p50b = changes[0].percentiles["p50"]
    assert p50a is not None and p50b is not None and 1.8 < p50b / p50a < 2.2
    assert changes[0].median_diff.low is not None and changes[0].median_diff.low > 0
    assert len(changes[0].stage_moves) == 3
    back = compare(b, a, n_resamples=500)
    assert {c.verdict for c in back} == {FASTER}
    console = Console(record=True, width=300)
    print_changes(changes, console)
    assert "slower" in console.export_text()


def test_compare_sees_no_change_between_samples_of_one_distribution(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", seed=7)
    b = make_run(tmp_path / "b", seed=8)
    changes = compare(a, b, n_resamples=500)
    assert [c.verdict for c in changes] == [NO_CHANGE, NO_CHANGE]
    assert compare(a, make_run(tmp_path / "c", seed=9, profiles=("other",))) == []
