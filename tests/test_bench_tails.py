"""The slowest probes and their causes (bench/tails.py), on synthetic records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudarcade.bench import tails
from cloudarcade.bench.analysis import summarize_all
from cloudarcade.bench.jsonl import JsonlWriter
from cloudarcade.bench.linkcap import Capacity
from cloudarcade.bench.records import DROP_ENCODE_SKIP, DROP_NETWORK, FrameRecord, ProbeRecord
from cloudarcade.bench.report import write_report
from cloudarcade.bench.summary import ProfileSummary, write_summary
from cloudarcade.stages import STAGES, TIMESTAMPS

CELL = "h264-1280x720-60fps-8M"
ORIGIN = 500.0
USUAL_MS = {name: 2.0 for name, _, _ in STAGES} | {"uplink": 30.0, "downlink": 35.0}


def probe(index: int, extra_ms: dict[str, float], *, frame_id: int) -> ProbeRecord:
    """A probe whose input leaves ``index`` seconds after the origin; each stage takes
    its usual time plus ``extra_ms``."""
    t = ORIGIN + index
    stamps = {TIMESTAMPS[0]: t}
    for name, _, end in STAGES:
        t += (USUAL_MS[name] + extra_ms.get(name, 0.0)) / 1000
        stamps[end] = t
    return ProbeRecord("lte", CELL, index, index, stamps,
                       stamps["photon"] - stamps["input_sent"], False, frame_id)


def records() -> tuple[list[ProbeRecord], list[FrameRecord]]:
    probes = [probe(i, {}, frame_id=100 * i) for i in range(20)]
    probes[3] = probe(3, {"downlink": 110.0, "uplink": 6.0}, frame_id=300)
    probes[7] = probe(7, {"tick_wait": 60.0, "encode": 3.0}, frame_id=700)
    probes.append(ProbeRecord("lte", CELL, 20, 20, {"input_sent": ORIGIN + 20}, None, True))
    frames = [FrameRecord("lte", CELL, i, None, {}, 0, False, False, DROP_ENCODE_SKIP)
              for i in range(695, 700)]
    frames.append(FrameRecord("lte", CELL, 299, None, {}, 0, False, False, DROP_ENCODE_SKIP))
    frames.append(FrameRecord("lte", CELL, 298, None, {}, 0, False, False, DROP_NETWORK))
    frames.append(FrameRecord("lte", CELL, 297, None, {}, 16_000, False, True))
    return probes, frames


def medians() -> dict[str, float]:
    return {name: ms / 1000 for name, ms in USUAL_MS.items()}


def test_names_the_stages_over_their_median_largest_first() -> None:
    probes, frames = records()
    capacity = Capacity((25e6, 0.0, 4e6, 4e6), bin=1.0)
    slow = tails.slowest_probes(probes, frames, medians(), origin=ORIGIN, capacity=capacity,
                                count=3)
    assert [s.probe for s in slow] == [3, 7, slow[2].probe]
    worst, second = slow[0], slow[1]
    assert list(worst.excess_ms) == ["downlink", "uplink"]
    assert worst.excess_ms["downlink"] == pytest.approx(110.0, abs=0.2)
    assert worst.at_s == pytest.approx(3.0)
    assert worst.capacity_mbps == pytest.approx(4.0)  # second 3 of the looped 4 s trace
    assert worst.unshown_before == {"encode_skip": 1, "network": 1}  # 299, then 298; 297 shown
    assert list(second.excess_ms) == ["tick_wait"]  # encode's 3 ms is under the 5 ms bar
    assert second.unshown_before == {"encode_skip": 5}
    assert second.describe() == "tick_wait +60 ms, 5 frame(s) before it not shown (encode_skip 5)"
    assert slow[2].excess_ms == {} and "no stage" in slow[2].describe()


def test_misses_are_left_out_and_no_origin_gives_no_time() -> None:
    probes, frames = records()
    slow = tails.slowest_probes(probes, frames, medians(), count=50)
    assert len(slow) == 20 and all(s.at_s is None and s.capacity_mbps is None for s in slow)
    with pytest.raises(ValueError, match="count -1"):
        tails.slowest_probes(probes, frames, medians(), count=-1)


def test_a_slow_probe_survives_the_summary_file() -> None:
    probes, frames = records()
    extra = {"stack": "tuned", "link_origin": ORIGIN, "capacity_rates": [8e6], "capacity_bin": 1.0}
    (summary,) = summarize_all(probes, frames, {("lte", CELL): extra}, n_resamples=50)
    assert summary.slowest[0]["probe"] == 3
    again = ProfileSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert tails.SlowProbe.from_dict(again.slowest[0]) == tails.SlowProbe.from_dict(
        summary.slowest[0])
    assert again.slowest[0]["capacity_mbps"] == pytest.approx(8.0)


def write_run(root: Path) -> Path:
    probes, frames = records()
    root.mkdir()
    with JsonlWriter(root / "probes.jsonl") as w:
        w.write_all(probes)
    with JsonlWriter(root / "frames.jsonl") as w:
        w.write_all(frames)
    extra = {"stack": "tuned", "link_origin": ORIGIN}
    write_summary(root / "summary.json",
                  summarize_all(probes, frames, {("lte", CELL): extra}, n_resamples=50))
    return root


def test_the_report_and_the_command_show_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells to the terminal's width
    run = write_run(tmp_path / "run")
    page = write_report(run).read_text()
    assert "The slowest probes" in page and "downlink +110 ms, uplink +6 ms" in page
    assert tails.main([str(tmp_path), "--count", "2"]) == 0
    out = capsys.readouterr().out
    assert "downlink +110 ms" in out and "tick_wait +60 ms" in out
    assert "lte" in out and "3.00" in out  # the shipped lte trace's capacity column too


def test_the_command_says_what_it_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tails.main([str(tmp_path)]) == 2
    assert "no probes.jsonl" in capsys.readouterr().err
    (tmp_path / "probes.jsonl").write_text("")
    (tmp_path / "summary.json").write_text("{not json")
    assert tails.main([str(tmp_path)]) == 2
    assert "summary.json: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tails.main([str(tmp_path), "--count", "0"])
    assert "--count 0: expected 1 or more" in capsys.readouterr().err
