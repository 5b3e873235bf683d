"""Link analysis: capacity over time, step traces, variants, and the link figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudarcade.bench.jsonl import read_frames
from cloudarcade.bench.linkcap import Capacity, from_trace, step_trace
from cloudarcade.bench.linkstats import link_stats
from cloudarcade.bench.records import FrameRecord
from cloudarcade.bench.runner import run_bench
from cloudarcade.bench.scenario import BenchConfig, Cell, expand_variants, split_variant
from cloudarcade.bench.summary import read_summary


def test_step_trace_round_trips_through_capacity() -> None:
    trace = step_trace([(2.0, 20.0), (1.0, 3.0), (2.0, 20.0)])
    assert trace.period_ms == 5000
    capacity = from_trace(trace)
    assert capacity.at(1.0) == pytest.approx(20e6, rel=0.02)
    assert capacity.at(2.5) == pytest.approx(3e6, rel=0.05)
    assert capacity.at(5.0 + 2.5) == capacity.at(2.5)  # looped
    steps = capacity.steps(0.0, 5.0)
    assert [(round(t, 1), round(a / 1e6), round(b / 1e6)) for t, a, b in steps] == [
        (2.0, 20, 3), (3.0, 3, 20)]
    with pytest.raises(ValueError, match="segment 0:3"):
        step_trace([(0, 3)])


def test_variants_name_the_controller() -> None:
    assert expand_variants(["tuned", "stock"], ["gcc"]) == ["tuned", "stock"]
    assert expand_variants(["tuned", "stock"], ["none", "gcc"]) == [
        "tuned+none", "tuned+gcc", "stock"]
    assert split_variant("tuned+none") == ("tuned", "none")
    assert split_variant("stock", "gcc") == ("stock", None)
    config = BenchConfig(out=None, stacks=["tuned+none", "tuned+gcc", "stock"],  # type: ignore[arg-type]
                         ccs=["none", "gcc"])
    assert config.primary_variant == "tuned+gcc"
    assert config.cc_of("tuned+none") == "none"
    assert BenchConfig(out=None).cc_of("tuned") == "gcc"  # type: ignore[arg-type]


def _frame(i: int, t: float, trip: float, size: int, target: float) -> FrameRecord:
    stamps = {"render_end": t - 0.01, "last_packet_sent": t - trip,
              "frame_complete": t, "decode_end": t + 0.002}
    return FrameRecord(profile="dip", cell="c", frame_id=i, timestamps=stamps,
                       size_bytes=size, cc_target=target,
                       rung="960x540@60" if 2.5 <= t < 5.0 else "1280x720@60")


def test_link_stats_drain_and_recovery() -> None:
    capacity = Capacity((8e6,) * 20 + (2e6,) * 20 + (8e6,) * 40, bin=0.1)  # 8 s
    frames = []
    for i in range(480):  # 60 fps for 8 s
        t = i / 60
        low = 2.0 <= t < 4.0
        # The queue builds for half a second after the drop, then drains.
        trip = 0.010 + (0.2 if low and t < 2.5 else 0.0)
        size = 4000 if low or t < 4.5 else 16000
        frames.append(_frame(i, t, trip, size, 2e6 if low else 6e6))
    extra = {"link_origin": 0.0, "capacity_rates": list(capacity.rates),
             "capacity_bin": capacity.bin, "bitrate": 8_000_000}
    stats = link_stats(frames, extra)
    assert stats["capacity_mbps"] == pytest.approx(6.5, abs=0.2)
    assert stats["queueing_ms"]["p100"] == pytest.approx(200, abs=1)
    down, up = stats["steps"]
    assert down["to_mbps"] == 2 and down["drain_s"] == pytest.approx(0.5, abs=0.05)
    # 16 kB frames at 60 fps are 7.7 Mbit/s: 80 % of 8M within a window after 4.5 s.
    assert up["to_mbps"] == 8 and 0.5 < up["recover_s"] < 1.5
    assert stats["series"][0][1] == pytest.approx(8.0)
    assert stats["rung_s"] == {"1280x720@60": pytest.approx(5.48, abs=0.02),
                               "960x540@60": pytest.approx(2.5, abs=0.02)}
    assert link_stats(frames, {}) == {}


@pytest.mark.slow
async def test_controllers_side_by_side_on_a_rate_limited_link(tmp_path: Path) -> None:
    """``--cc none,gcc``: one directory per controller, both in the report, link figures."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('[cap4]\ndescription = "4 Mbit/s"\nsource = "test"\n'
                        'delay_ms = 5\nrate_mbps = 4\n')
    out = tmp_path / "run"
    config = BenchConfig(
        out=out, profiles=["cap4"], cells=[Cell("h264", 640, 360, 30, 2_000_000)],
        stacks=expand_variants(["tuned"], ["none", "gcc"]), ccs=["none", "gcc"],
        probes=6, probe_interval=0.1, warmup=0.5, extra_profiles=profiles,
    )
    runs = await run_bench(config)
    assert set(runs) == {"tuned+none", "tuned+gcc"}
    assert runs["tuned+gcc"].path == out and runs["tuned+none"].path == out / "cc-none"
    [gcc] = read_summary(out / "summary.json")
    [none] = read_summary(out / "cc-none" / "summary.json")
    assert (gcc.stack, none.stack) == ("tuned+gcc", "tuned+none")
    assert gcc.link["capacity_mbps"] == pytest.approx(4.0)
    assert none.link["target_mbps_p50"] == pytest.approx(2.0)
    frames, _ = read_frames(out / "frames.jsonl")
    assert any(f.cc_target is not None for f in frames)
    page = (out / "report.html").read_text()
    assert "tuned+none" in page and "The link" in page and (out / "link.png").is_file()
