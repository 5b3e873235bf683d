"""The sans-I/O half of the benchmark on synthetic records: records, JSONL, analysis, MOS."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade.bench import analysis
from cloudarcade.bench.jsonl import JsonlWriter, read_frames, read_jsonl, read_probes
from cloudarcade.bench.mos import gaming_mos, mos_from_r
from cloudarcade.bench.records import FrameRecord, ProbeRecord
from cloudarcade.bench.summary import ProfileSummary, read_summary, write_summary
from cloudarcade.stages import STAGES, TIMESTAMPS


def probes_from(delays: np.ndarray, profile: str = "ideal", cell: str = "c") -> list[ProbeRecord]:
    out = []
    for i, d in enumerate(delays):
        missed = not math.isfinite(d)
        out.append(
            ProbeRecord(
                profile, cell, i, i,
                timestamps={} if missed else {"input_sent": 10.0 + i, "photon": 10.0 + i + d},
                input_to_photon=None if missed else float(d),
                missed=missed,
                frame_id=None if missed else i,
            )
        )
    return out


def frames_at(times: list[float] | np.ndarray, size: int = 1000) -> list[FrameRecord]:
    return [
        FrameRecord("ideal", "c", i, None, {"tick_start": t - 0.01, "decode_end": t}, size)
        for i, t in enumerate(times)
    ]


# --- percentiles and confidence intervals -------------------------------------------------


def test_percentile_cis_cover_lognormal_truth() -> None:
    mu, sigma = math.log(0.030), 0.4
    rng = np.random.default_rng(1)
    stats = analysis.latency_stats(probes_from(rng.lognormal(mu, sigma, 3000)), n_resamples=500)
    from scipy.stats import norm

    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        est = getattr(stats, name)
        truth = math.exp(mu + sigma * norm.ppf(q))
        assert est.low is not None and est.high is not None and est.value is not None
        assert est.low <= truth <= est.high, (name, est, truth)
        assert est.low <= est.value <= est.high
    assert stats.count == 3000 and stats.misses == 0
    assert stats.max.value is not None and stats.max.value >= stats.p99.value  # type: ignore[operator]


def test_misses_are_counted_and_rank_last() -> None:
    delays = np.full(100, 0.020)
    delays[-5:] = np.inf
    stats = analysis.latency_stats(probes_from(delays), n_resamples=200)
    assert stats.count == 100 and stats.misses == 5 and stats.miss_rate == 0.05
    assert stats.p50.value == pytest.approx(0.020)
    assert stats.p99.value is None  # among the misses
    assert stats.max.value is None
    assert stats.mean == pytest.approx(0.020)


def test_degenerate_and_empty_samples() -> None:
    assert analysis.latency_stats([]).p50.value is None
    one = analysis.latency_stats(probes_from(np.array([0.01])))
    assert one.p50.value == one.p50.low == one.p50.high == 0.01


# --- stages --------------------------------------------------------------------------------


def full_probe(i: int, rng: np.random.Generator) -> ProbeRecord:
    t = 100.0 + i
    stamps = {TIMESTAMPS[0]: t}
    for name in TIMESTAMPS[1:]:
        t += float(rng.uniform(0.0005, 0.003))
        stamps[name] = t
    return ProbeRecord("ideal", "c", i, i, stamps, t - stamps["input_sent"], False, i)


def test_stage_sums_agree_with_end_to_end() -> None:
    rng = np.random.default_rng(2)
    probes = [full_probe(i, rng) for i in range(400)]
    for p in probes[:5]:
        stages = analysis.probe_stages(p)
        assert sum(stages.values()) == pytest.approx(p.input_to_photon)
        assert stages["unaccounted"] == pytest.approx(0.0, abs=1e-9)
    medians = analysis.stage_medians(p.timestamps for p in probes)
    assert list(medians)[:-1] == [name for name, _, _ in STAGES]
    check = analysis.stage_check(probes, medians)
    assert check.end_to_end_median is not None and check.discrepancy is not None
    # Medians do not add exactly; with 13 similar stages they come close.
    assert abs(check.discrepancy) < 0.1 * check.end_to_end_median


def test_missing_stamps_go_to_unaccounted() -> None:
    p = ProbeRecord("x", "c", 0, 0, {"input_sent": 0.0, "input_recv": 0.004, "photon": 0.05}, 0.05)
    stages = analysis.probe_stages(p)
    assert stages == {"uplink": pytest.approx(0.004), "unaccounted": pytest.approx(0.046)}


# --- frame rate, freezes, drops, bitrate ------------------------------------------------------


def test_harmonic_fps_equals_fps_for_constant_gaps_and_is_lower_with_jitter() -> None:
    steady = analysis.frame_timing(frames_at(np.arange(600) / 60.0))
    assert steady.fps == pytest.approx(60.0)
    assert steady.harmonic_fps == pytest.approx(60.0)
    rng = np.random.default_rng(3)
    gaps = rng.uniform(0.005, 0.028, 600)
    jittery = analysis.frame_timing(frames_at(np.cumsum(gaps)))
    assert jittery.fps is not None and jittery.harmonic_fps is not None
    assert jittery.harmonic_fps < jittery.fps - 3


def test_freezes_by_webrtc_rule() -> None:
    gaps = [1 / 60] * 300
    gaps[100] = 0.400  # freeze: > mean + 150 ms
    gaps[200] = 0.120  # not: < mean + 150 ms although > 3 x mean
    gaps[250] = 0.250  # freeze
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    timing = analysis.frame_timing(frames_at(times))
    assert timing.freeze_count == 2
    assert timing.freeze_total == pytest.approx(0.650)
    assert [round(d, 3) for _, d in timing.freezes] == [0.4, 0.25]
    # At 5 fps (mean 200 ms) a 500 ms gap is under 3 x mean: not a freeze; 700 ms is.
    slow = [0.2] * 20 + [0.5] + [0.2] * 5 + [0.7]
    assert [round(d, 1) for _, d in analysis.find_freezes(np.cumsum([0.0, *slow]))] == [0.7]


def test_drops_and_bitrate() -> None:
    frames = frames_at(np.arange(61) / 60.0, size=10_000)
    frames[3].decoded, frames[3].drop_phase = False, "network"
    frames[4].decoded, frames[4].drop_phase = False, "network"
    frames[5].decoded = False
    frames[6].decoded, frames[6].drop_phase = False, "encode_skip"
    assert analysis.drops_by_phase(frames) == {"encode_skip": 1, "network": 2, "unknown": 1}
    # 61 frames of 10 kB at 60 fps: 61 x 80 kbit over 61/60 s = 4.8 Mbit/s.
    assert analysis.bitrate(frames) == pytest.approx(4.8e6)


# --- picture quality ------------------------------------------------------------------------


def test_psnr_and_ssim() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (72, 128), dtype=np.uint8)
    assert analysis.psnr(a, a) == math.inf
    assert analysis.ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < analysis.psnr(a, b) < 30.2
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert analysis.ssim(a, noisy) < analysis.ssim(a, b) < 1.0
    with pytest.raises(ValueError):
        analysis.psnr(a, a[:10])


# --- summary --------------------------------------------------------------------------------


def test_summarize_round_trips_through_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    probes = [full_probe(i, rng) for i in range(200)]
    frames = frames_at(np.arange(600) / 60.0, size=16_000)
    frames[10].psnr, frames[10].ssim = 40.0, 0.98
    extra = {"packet_loss": 0.01, "resolution": "1280x720", "fps": 60, "stack": "cloudarcade"}
    s = analysis.summarize(probes, frames, extra, n_resamples=200)
    assert (s.profile, s.cell) == ("ideal", "c")
    assert s.latency.count == 200 and s.mos is not None and 1.3 <= s.mos <= 4.64
    assert s.psnr_mean == 40.0 and s.quality_samples == 1
    assert set(s.stage_medians) >= {"uplink", "decode", "unaccounted"}
    path = tmp_path / "summary.json"
    write_summary(path, [s], seed=1)
    json.loads(path.read_text())  # strict JSON
    back = read_summary(path)[0]
    assert back.to_dict() == s.to_dict()
    assert isinstance(back, ProfileSummary)
    with pytest.raises(ValueError, match="other"):
        analysis.summarize(probes_from(np.array([0.01]), profile="lte"), frames)


def test_summarize_all_groups_by_profile_and_cell() -> None:
    rng = np.random.default_rng(6)
    probes = probes_from(rng.lognormal(-4, 0.3, 50), "a") + probes_from(
        rng.lognormal(-3, 0.3, 50), "b"
    )
    out = analysis.summarize_all(probes, [], n_resamples=100)
    assert [s.profile for s in out] == ["a", "b"]
    assert out[0].latency.p50.value < out[1].latency.p50.value  # type: ignore[operator]


# --- MOS --------------------------------------------------------------------------------------

_video = {"bitrate_bps": 8e6, "fps": 60.0, "width": 1280, "height": 720}


@settings(max_examples=150, deadline=None)
@given(
    d1=st.floats(0, 1.0),
    d2=st.floats(0, 1.0),
    l1=st.floats(0, 0.2),
    l2=st.floats(0, 0.2),
    br=st.floats(1e5, 1e8),
    fps=st.floats(5, 120),
)
def test_mos_is_monotone_in_delay_and_loss(
    d1: float, d2: float, l1: float, l2: float, br: float, fps: float
) -> None:
    (dlo, dhi), (llo, lhi) = sorted((d1, d2)), sorted((l1, l2))
    video = {**_video, "bitrate_bps": br, "fps": fps}
    best = gaming_mos(delay_s=dlo, packet_loss=llo, **video).mos  # type: ignore[arg-type]
    worse_delay = gaming_mos(delay_s=dhi, packet_loss=llo, **video).mos  # type: ignore[arg-type]
    worse_loss = gaming_mos(delay_s=dlo, packet_loss=lhi, **video).mos  # type: ignore[arg-type]
    assert worse_delay <= best + 1e-12 and worse_loss <= best + 1e-12
    assert 1.3 <= best <= 4.64


@given(st.floats(0, 100), st.floats(0, 100))
def test_mos_from_r_is_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert mos_from_r(lo) <= mos_from_r(hi)


def test_mos_figures_are_plausible() -> None:
    ideal = gaming_mos(delay_s=0.02, packet_loss=0.0, **_video).mos  # type: ignore[arg-type]
    slow = gaming_mos(delay_s=0.2, packet_loss=0.0, **_video).mos  # type: ignore[arg-type]
    lossy = gaming_mos(delay_s=0.02, packet_loss=0.05, **_video).mos  # type: ignore[arg-type]
    assert ideal > 4.0 and slow < ideal - 0.5 and lossy < ideal - 1.0
    low_rate = gaming_mos(delay_s=0.02, packet_loss=0.0, **{**_video, "bitrate_bps": 5e5})
    assert low_rate.mos < ideal
    with pytest.raises(ValueError, match="known"):
        gaming_mos(delay_s=0, packet_loss=0, video_complexity="extreme", **_video)  # type: ignore[arg-type]


# --- records and JSONL --------------------------------------------------------------------


def test_jsonl_reader_skips_a_truncated_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "probes.jsonl"
    with JsonlWriter(path) as writer:
        for p in probes_from(np.array([0.01, 0.02, np.inf])):
            writer.write(p)
        # Flushed per line: readable before close.
        assert len(read_jsonl(path).records) == 3
    with path.open("a") as f:
        f.write('{"profile": "ideal", "cell": "c", "pro')  # killed mid-write
    with caplog.at_level(logging.WARNING):
        probes, skipped = read_probes(path)
    assert skipped == 1 and len(probes) == 3 and "truncated" in caplog.text
    assert probes[2].missed and probes[2].input_to_photon is None
    assert probes[0] == probes_from(np.array([0.01]))[0]


def test_jsonl_reader_rejects_corruption_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "frames.jsonl"
    good = json.dumps(FrameRecord("p", "c", 1, 2, {"tick_start": 1.0}, 500, True).to_dict())
    path.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(ValueError, match=r"frames.jsonl:2"):
        read_frames(path)
    path.write_text(f"{good}\n\n{good}\n")
    frames, skipped = read_frames(path)
    assert skipped == 0 and frames[0].keyframe and frames[0].size_bytes == 500


def test_record_parsing_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown timestamp 'bogus'"):
        ProbeRecord.from_dict({"profile": "p", "cell": "c", "probe": 0, "input_seq": 0,
                               "timestamps": {"bogus": 1.0}})
    with pytest.raises(ValueError, match="missing field 'frame_id'"):
        FrameRecord.from_dict({"profile": "p", "cell": "c"})
