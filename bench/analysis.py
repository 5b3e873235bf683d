"""Pure functions from probe and frame records to figures: no I/O, no clocks.

Conventions (see docs/bench.md):

- Percentiles are empirical (``inverted_cdf``: the smallest measured delay
  that at least q of the probes did not exceed). Misses rank above every
  measured delay; a percentile that falls among them is ``None`` ("missed").
- Confidence intervals: ``scipy.stats.bootstrap``, percentile method, seeded.
- Frame rate and freezes follow WebRTC's full-stack tests.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import ndimage, stats

from cloudarcade.stages import DECODE_END, INPUT_TO_PHOTON, STAGE_NAMES, stage_durations

from .linkstats import extras_capacity, link_stats
from .mos import gaming_mos, parse_resolution
from .records import DROP_ENCODE_SKIP, FrameRecord, ProbeRecord
from .summary import Estimate, FrameDelivery, LatencyStats, ProfileSummary, StageCheck
from .tails import slowest_probes

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Misses stand in as this many seconds: above any real delay, finite for numpy.
MISS_SENTINEL: Final = 1e9
FREEZE_MIN_EXTRA: Final = 0.150  # seconds, WebRTC's "mean gap + 150 ms"
FREEZE_FACTOR: Final = 3.0


def quantile_statistic(q: float) -> Callable[..., Any]:
    """A vectorised empirical q-quantile (``inverted_cdf``) for ``scipy.stats.bootstrap``."""
    def statistic(x: FloatArray, axis: int = -1) -> Any:
        return np.quantile(x, q, axis=axis, method="inverted_cdf")

    return statistic


def bootstrap_ci(
    samples: Sequence[FloatArray],
    statistic: Callable[..., Any],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Percentile-method bootstrap CI of ``statistic(*samples)`` (independent resampling).

    A sample too small or too uniform to resample gives the zero-width CI at the point.
    """
    point = float(statistic(*samples))
    if any(len(s) < 2 for s in samples):
        return point, point
    with warnings.catch_warnings():
        # All-equal resamples: scipy warns and returns NaN; we answer the point.
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            tuple(samples),
            statistic,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            vectorized=True,
            random_state=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):
        return point, point
    return low, high


def delays_with_misses(probes: Iterable[ProbeRecord]) -> FloatArray:
    """input_to_photon per probe, a miss as :data:`MISS_SENTINEL` (ranked above any delay)."""
    values = [
        MISS_SENTINEL if p.missed or p.input_to_photon is None else p.input_to_photon
        for p in probes
    ]
    return np.asarray(values, dtype=np.float64)


def measured_or_none(value: float) -> float | None:
    """``None`` for a value that came from the miss sentinel."""
    return None if value >= MISS_SENTINEL / 2 else value


def miss_count(delays: FloatArray) -> int:
    """How many of :func:`delays_with_misses`' values are misses."""
    return int(np.count_nonzero(delays >= MISS_SENTINEL / 2))


def percentile_estimate(
    probes: Sequence[ProbeRecord],
    q: float,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """The q-quantile (0..1) of input_to_photon with a bootstrap CI, misses ranked last."""
    return _estimate(delays_with_misses(probes), q, confidence=confidence,
                     n_resamples=n_resamples, seed=seed)


def _estimate(
    data: FloatArray, q: float, *, confidence: float, n_resamples: int, seed: int
) -> Estimate:
    if data.size == 0:
        return Estimate(None)
    statistic = quantile_statistic(q)
    value = float(statistic(data))
    low, high = bootstrap_ci(
        [data], statistic, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return Estimate(measured_or_none(value), measured_or_none(low), measured_or_none(high))


def latency_stats(
    probes: Sequence[ProbeRecord],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> LatencyStats:
    """p50/p95/p99 with bootstrap CIs, max, mean of measured delays; misses counted."""
    data = delays_with_misses(probes)
    out = LatencyStats(count=int(data.size), misses=miss_count(data), confidence=confidence)
    measured = data[data < MISS_SENTINEL / 2]
    if measured.size:
        out.mean = float(measured.mean())
    if data.size == 0:
        return out
    kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_resamples}
    out.p50 = _estimate(data, 0.50, seed=seed, **kw)
    out.p95 = _estimate(data, 0.95, seed=seed + 1, **kw)
    out.p99 = _estimate(data, 0.99, seed=seed + 2, **kw)
    out.max = Estimate(measured_or_none(float(data.max())))
    return out


def probe_stages(probe: ProbeRecord) -> dict[str, float]:
    """Seconds per stage of one probe (``cloudarcade.stages.stage_durations``)."""
    return stage_durations(probe.timestamps)


def stage_medians(stamp_sets: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Median of each stage over the records that have both its stamps, in path order."""
    values: dict[str, list[float]] = defaultdict(list)
    for stamps in stamp_sets:
        for name, seconds in stage_durations(dict(stamps)).items():
            values[name].append(seconds)
    return {name: float(np.median(values[name])) for name in STAGE_NAMES if values[name]}


def stage_check(probes: Sequence[ProbeRecord], medians: Mapping[str, float]) -> StageCheck:
    """Compare Σ stage medians (with unaccounted) to the end-to-end median of the same probes."""
    e2e = [
        p.timestamps["photon"] - p.timestamps["input_sent"]
        for p in probes
        if "photon" in p.timestamps and "input_sent" in p.timestamps
    ]
    if not e2e or not medians:
        return StageCheck()
    total = float(sum(medians.values()))
    median = float(np.median(e2e))
    return StageCheck(sum_of_medians=total, end_to_end_median=median, discrepancy=total - median)


def frame_gaps(times: Sequence[float]) -> FloatArray:
    """Gaps between consecutive times, after sorting."""
    ordered = np.sort(np.asarray(times, dtype=np.float64))
    return np.diff(ordered)


def harmonic_fps(gaps: FloatArray) -> float | None:
    """WebRTC's harmonic frame rate, Σd / Σd²: equals 1/d for constant gaps, lower with jitter."""
    squares = float(np.sum(gaps * gaps))
    return float(np.sum(gaps)) / squares if squares > 0 else None


def find_freezes(times: Sequence[float]) -> list[tuple[float, float]]:
    """(start, duration) of each gap > max(3 x mean, mean + 150 ms).

    The mean is the running mean of the gaps before this one, as WebRTC's
    analyzer keeps it; the first gap has no mean and is never a freeze.
    """
    ordered = np.sort(np.asarray(times, dtype=np.float64))
    gaps = np.diff(ordered)
    out: list[tuple[float, float]] = []
    total = 0.0
    for i, gap in enumerate(gaps):
        if i > 0:
            mean = total / i
            if gap > max(FREEZE_FACTOR * mean, mean + FREEZE_MIN_EXTRA):
                out.append((float(ordered[i]), float(gap)))
        total += float(gap)
    return out


def frame_timing(frames: Sequence[FrameRecord], *, stamp: str = DECODE_END) -> FrameDelivery:
    """Delivered and harmonic fps and freezes over the decoded frames' ``stamp`` times."""
    times = [f.timestamps[stamp] for f in frames if f.decoded and stamp in f.timestamps]
    out = FrameDelivery(frames=len(frames), decoded=sum(1 for f in frames if f.decoded))
    if len(times) < 2:
        return out
    gaps = frame_gaps(times)
    out.duration = float(np.sum(gaps))
    out.fps = len(gaps) / out.duration if out.duration > 0 else None
    out.harmonic_fps = harmonic_fps(gaps)
    out.freezes = find_freezes(times)
    out.freeze_count = len(out.freezes)
    out.freeze_total = float(sum(d for _, d in out.freezes))
    return out


def drops_by_phase(frames: Iterable[FrameRecord]) -> dict[str, int]:
    """Count of frames not decoded, by ``drop_phase`` (``"unknown"`` when not given)."""
    counts = Counter(f.drop_phase or "unknown" for f in frames if not f.decoded)
    return dict(sorted(counts.items()))


def bitrate(frames: Sequence[FrameRecord]) -> float | None:
    """Encoded bit/s: Σ frame bytes x 8 over the span of the frames' first stamps.

    The span of n frames is (last - first) x n / (n - 1): n frame intervals.
    """
    times = [min(f.timestamps.values()) for f in frames if f.timestamps]
    if len(times) < 2 or not any(f.size_bytes for f in frames):
        # No sizes at all (the stock stack encodes inside aiortc): unknown, not 0.
        return None
    span = (max(times) - min(times)) * len(times) / (len(times) - 1)
    if span <= 0:
        return None
    return 8.0 * sum(f.size_bytes for f in frames) / span


def psnr(reference: npt.NDArray[Any], test: npt.NDArray[Any], peak: float = 255.0) -> float:
    """PSNR in dB of two equally shaped arrays (uint8 luma); ``inf`` when identical."""
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {test.shape}")
    diff = reference.astype(np.float64) - test.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def ssim(
    reference: npt.NDArray[Any],
    test: npt.NDArray[Any],
    *,
    peak: float = 255.0,
    sigma: float = 1.5,
) -> float:
    """Mean SSIM (Wang et al. 2004): 11-tap gaussian window sigma=1.5, K1=0.01, K2=0.03."""
    if reference.shape != test.shape or reference.ndim != 2:
        raise ValueError(f"need two equal 2-D planes: {reference.shape} vs {test.shape}")
    x = reference.astype(np.float64)
    y = test.astype(np.float64)
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2

    def blur(a: FloatArray) -> FloatArray:
        # truncate 3.5 sigma → radius 5: the 11x11 window of the reference implementation.
        result: FloatArray = ndimage.gaussian_filter(a, sigma, truncate=3.5, mode="reflect")
        return result

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def _mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return (float(np.mean(kept)) if kept else None), len(kept)


def summarize(
    probes: Sequence[ProbeRecord],
    frames: Sequence[FrameRecord],
    extra: Mapping[str, Any] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> ProfileSummary:
    """One (profile, cell)'s summary.

    ``extra`` may hold ``profile``, ``cell`` (else taken from the records),
    ``stack``, ``client``, ``packet_loss`` (ratio 0..1, from the transport stats),
    ``resolution`` (``"1280x720"``) and ``fps`` (for the MOS); everything in it
    is kept in ``summary.extra``.
    """
    extra = dict(extra or {})
    first: ProbeRecord | FrameRecord | None = (
        probes[0] if probes else (frames[0] if frames else None)
    )
    profile = str(extra.get("profile", first.profile if first else ""))
    cell = str(extra.get("cell", first.cell if first else ""))
    keys = {(p.profile, p.cell) for p in probes} | {(f.profile, f.cell) for f in frames}
    mixed = keys - {(profile, cell)}
    if mixed:
        raise ValueError(f"records of other (profile, cell) pairs: {sorted(mixed)}")

    stack = str(extra.get("stack", "cloudarcade"))
    summary = ProfileSummary(profile=profile, cell=cell, stack=stack,
                             client=str(extra.get("client", "headless")))
    summary.latency = latency_stats(
        probes, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    summary.stage_medians = stage_medians(p.timestamps for p in probes if not p.missed)
    summary.stage_check = stage_check([p for p in probes if not p.missed], summary.stage_medians)
    summary.frame_stage_medians = stage_medians(f.timestamps for f in frames if f.decoded)
    summary.timing = frame_timing(frames)
    summary.drops_by_phase = drops_by_phase(frames)
    summary.bitrate_bps = bitrate(frames)
    if summary.bitrate_bps is None and extra.get("rtp_bitrate_bps") is not None:
        # Frame sizes unknown (aiortc's own encoder): the sender reports' count.
        summary.bitrate_bps = float(extra["rtp_bitrate_bps"])
    loss = extra.get("packet_loss")
    summary.packet_loss = None if loss is None else float(loss)
    summary.psnr_mean, summary.quality_samples = _mean(f.psnr for f in frames)
    summary.ssim_mean, _ = _mean(f.ssim for f in frames)
    summary.link = link_stats(frames, extra)
    summary.slowest = [row.to_dict() for row in slowest_probes(
        probes, frames, summary.stage_medians,
        origin=None if extra.get("link_origin") is None else float(extra["link_origin"]),
        capacity=extras_capacity(extra))]
    # The capacity series went into ``link``; the summary keeps no copy of it.
    summary.extra = {k: v for k, v in extra.items()
                     if k not in ("profile", "cell", "capacity_rates")}
    _add_mos(summary, extra)
    return summary


def _add_mos(summary: ProfileSummary, extra: Mapping[str, Any]) -> None:
    delay = summary.latency.p50.value
    resolution = extra.get("resolution")
    fps = summary.timing.fps or extra.get("fps")
    if delay is None or resolution is None or fps is None or summary.bitrate_bps is None:
        return
    try:
        width, height = parse_resolution(str(resolution))
    except ValueError as exc:
        logger.warning("no MOS for %s/%s: %s", summary.profile, summary.cell, exc)
        return
    frames = summary.timing.frames
    # Frame loss is what the network or decoder lost; frames never sent (the
    # stock stack sends every other frame at 60 fps) show in the frame rate.
    dropped = sum(n for phase, n in summary.drops_by_phase.items() if phase != DROP_ENCODE_SKIP)
    result = gaming_mos(
        delay_s=delay,
        packet_loss=summary.packet_loss or 0.0,
        frame_loss=dropped / frames if frames else None,
        bitrate_bps=summary.bitrate_bps,
        fps=float(fps),
        width=width,
        height=height,
    )
    summary.mos = result.mos
    summary.mos_detail = result.to_dict()


_Keyed = TypeVar("_Keyed", ProbeRecord, FrameRecord)


def group_by_key(records: Iterable[_Keyed]) -> dict[tuple[str, str], list[_Keyed]]:
    """Records by (profile, cell), in order of first appearance."""
    out: dict[tuple[str, str], list[_Keyed]] = {}
    for r in records:
        out.setdefault((r.profile, r.cell), []).append(r)
    return out


def summarize_all(
    probes: Sequence[ProbeRecord],
    frames: Sequence[FrameRecord],
    extras: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> list[ProfileSummary]:
    """:func:`summarize` per (profile, cell), in order of first appearance."""
    probe_groups, frame_groups = group_by_key(probes), group_by_key(frames)
    extras = extras or {}
    return [
        summarize(probe_groups.get(key, []), frame_groups.get(key, []),
                  {"profile": key[0], "cell": key[1], **extras.get(key, {})}, **kwargs)
        for key in dict.fromkeys([*probe_groups, *frame_groups])
    ]


__all__ = [
    "INPUT_TO_PHOTON",
    "bitrate",
    "drops_by_phase",
    "find_freezes",
    "frame_gaps",
    "frame_timing",
    "group_by_key",
    "harmonic_fps",
    "latency_stats",
    "percentile_estimate",
    "probe_stages",
    "psnr",
    "ssim",
    "stage_check",
    "stage_medians",
    "summarize",
    "summarize_all",
]
