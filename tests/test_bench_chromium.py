"""``cloudarcade bench --client headless,chromium``: a short real run in Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudarcade.bench.jsonl import read_frames, read_probes
from cloudarcade.bench.runner import run_bench
from cloudarcade.bench.scenario import BenchConfig, Cell
from cloudarcade.bench.summary import read_summary
from cloudarcade.stages import stage_durations

pytestmark = pytest.mark.slow


async def test_chromium_beside_headless_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = BenchConfig(
        out=out, profiles=["ideal"], cells=[Cell("h264", 640, 360, 60, 1_000_000)],
        stacks=["tuned"], clients=["headless", "chromium"], probes=10, probe_interval=0.12,
        warmup=0.5, sample_every=15,
    )
    runs = await run_bench(config)
    assert set(runs) == {"tuned", "chromium/tuned"}
    for name in ("metadata.json", "report.html", "ecdf.png", "stages.png", "timeseries.png"):
        assert (out / name).is_file(), name
    for name in ("probes.jsonl", "frames.jsonl", "summary.json"):
        assert (out / "chromium" / name).is_file(), name

    probes, skipped = read_probes(out / "chromium" / "probes.jsonl")
    assert skipped == 0 and len(probes) == 10
    hits = [p for p in probes if not p.missed]
    assert len(hits) >= 8
    for probe in hits:
        stamps = probe.timestamps
        assert probe.input_to_photon is not None and 0 < probe.input_to_photon < 1.0
        # The browser's stages, placed between the server's and the photon.
        assert {"encode_end", "last_packet_sent", "frame_complete", "decode_start",
                "decode_end", "photon"} <= set(stamps)
        stages = stage_durations(stamps)
        assert sum(stages.values()) == pytest.approx(probe.input_to_photon, abs=1e-6)
        if "input_recv" in stamps:  # every stage known: nothing left unaccounted
            assert abs(stages["unaccounted"]) < 1e-6
        # One clock: every stage runs forwards, give or take the page clock's mapping
        # (under a millisecond) and the server's last_packet_sent, stamped when the
        # sender comes back for the next frame (a few ms late under load).
        late = [(k, v) for k, v in stages.items() if v <= -0.005]
        assert not late, late

    # Chromium may skip presenting the frame of the tick that applied the input (two
    # in one vsync); the later frame that is the photon carries the input's arrival too.
    assert all("input_recv" in p.timestamps for p in hits)

    (summary,) = read_summary(out / "chromium" / "summary.json")
    assert summary.client == "chromium" and summary.stack == "tuned"
    assert summary.latency.count == 10 and summary.latency.p50.value is not None
    assert {"reassembly", "decode", "present", "downlink"} <= set(summary.stage_medians)
    clock = summary.extra["page_clock"]
    assert clock["samples"] >= 10 and 0 < clock["uncertainty_ms"] < 20
    assert summary.extra["frames_unreadable"] == 0
    assert summary.extra["browser_jitter_buffer_ms"] is not None
    # The page's own measurement ran on the same session, beside the bench's probes.
    assert summary.extra["page_measure_presses"] >= 30
    assert summary.extra["page_measure_p50_ms"] > 0

    frames, _ = read_frames(out / "chromium" / "frames.jsonl")
    assert sum(f.decoded for f in frames) > 20
    # The page sees painted frames only, so it never claims one was lost on the way (at
    # 60 fps Chromium leaves a frame or two of a run unpainted: two in one vsync).
    assert {f.drop_phase for f in frames if not f.decoded} <= {"encode_skip", "unshown"}
    (headless,) = read_summary(out / "summary.json")
    assert headless.client == "headless"
    html = (out / "report.html").read_text()
    assert "chromium" in html and "headless" in html
