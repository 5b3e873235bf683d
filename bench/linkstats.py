"""What the sender did with the link: bitrate against capacity, queueing, recovery.

Per (profile, cell, stack), from the frame records and the link's capacity
(:mod:`cloudarcade.bench.linkcap`, passed through the runner's extras):

- ``capacity_mbps`` (mean over the measured span) and ``achieved_mbps``
  (decoded frames' bytes over the span);
- ``queueing_ms`` p50/p95/max: each frame's ``frame_complete -
  last_packet_sent`` (the last packet's one-way trip, one clock) above its 2nd
  percentile, i.e. time spent in queues;
- ``frame_delay_ms`` p50/p95/p99: ``render_end → decode_end`` per decoded frame;
- ``steps``: each capacity step of 2x or more inside the span, with ``drain_s``
  (a step down: from the step until every frame's queueing stays under 30 ms)
  and ``recover_s`` (a step up: from the step until the delivered bitrate, in
  0.5 s windows, reaches 80 % of the configured bitrate);
- ``series``: (t, capacity, target, delivered) every 0.25 s for the report's plot.

Times are seconds from the link's origin: where the relay says its downlink
trace started (:mod:`cloudarcade.bench.link_origin`), or, for a profile with
no trace, the moment the client started connecting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudarcade.bench.linkcap import Capacity, downlink_capacity
from cloudarcade.bench.records import FrameRecord

if TYPE_CHECKING:
    from cloudarcade.bench.scenario import BenchConfig

logger = logging.getLogger(__name__)

DRAINED_S = 0.030  # queueing under this counts as drained
RECOVERED = 0.8  # fraction of the configured bitrate that counts as recovered
_WINDOW_S = 0.5
_SERIES_STEP_S = 0.25


def profile_capacity(profile_name: str, extra_profiles: Path | None = None) -> Capacity | None:
    """A profile's downlink capacity (None when unlimited, unknown or unreadable)."""
    from cloudarcade.netsim import ProfileError, load_profiles

    try:
        profiles = load_profiles()
        if extra_profiles is not None:
            profiles.update(load_profiles(extra_profiles))
    except ProfileError as exc:
        logger.warning("no link capacity for %s: %s", profile_name, exc)
        return None
    profile = profiles.get(profile_name)
    return downlink_capacity(profile) if profile is not None else None


def link_extras(config: BenchConfig, profile_name: str) -> dict[str, Any]:
    """The profile's downlink capacity for the runner's extras ({} when unlimited)."""
    capacity = profile_capacity(profile_name, config.extra_profiles)
    if capacity is None:
        return {}
    return {"capacity_bin": capacity.bin, "capacity_rates": list(capacity.rates)}


def extras_capacity(extra: Mapping[str, Any]) -> Capacity | None:
    """The capacity :func:`link_extras` put in the extras, or None."""
    rates = extra.get("capacity_rates")
    return Capacity(tuple(rates), float(extra["capacity_bin"])) if rates else None


def _percentiles(values: Sequence[float], qs: Sequence[int]) -> dict[str, float | None]:
    if not values:
        return {f"p{q}": None for q in qs}
    array = np.asarray(values) * 1000
    return {f"p{q}": round(float(np.percentile(array, q)), 2) for q in qs}


def link_stats(frames: Sequence[FrameRecord], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The link figures of one (profile, cell, stack); {} without frames or an origin."""
    origin = extra.get("link_origin")
    decoded = [f for f in frames if f.decoded and "decode_end" in f.timestamps]
    if origin is None or len(decoded) < 2:
        return {}
    decoded.sort(key=lambda f: f.timestamps["decode_end"])
    times = np.array([f.timestamps["decode_end"] - float(origin) for f in decoded])
    start, end = float(times[0]), float(times[-1])
    span = max(end - start, 1e-9)
    sizes = np.array([f.size_bytes for f in decoded], dtype=float)
    out: dict[str, Any] = {"span_s": round(span, 2)}
    if sizes.sum() > 0:
        out["achieved_mbps"] = round(float(sizes.sum() * 8 / span / 1e6), 3)
    capacity = extras_capacity(extra)
    if capacity is not None:
        out["capacity_mbps"] = round(capacity.mean(start, end) / 1e6, 3)

    queue_times, queueing = _queueing(frames, float(origin))
    out["queueing_ms"] = _percentiles(queueing, (50, 95, 100))
    out["frame_delay_ms"] = _percentiles(
        [f.timestamps["decode_end"] - f.timestamps["render_end"]
         for f in decoded if "render_end" in f.timestamps], (50, 95, 99))
    targets = [f.cc_target for f in decoded if f.cc_target is not None]
    if targets:
        out["target_mbps_p50"] = round(float(np.median(targets)) / 1e6, 3)
    rungs = _rung_seconds(decoded, times)
    if rungs:
        out["rung_s"] = rungs

    configured = float(extra.get("bitrate") or 0)
    window_t, delivered = _delivered(times, sizes)
    if capacity is not None:
        out["steps"] = _steps(capacity, start, end, queue_times, queueing, window_t, delivered,
                              configured)
        out["series"] = _series(capacity, decoded, times, window_t, delivered, start, end)
    return out


def _rung_seconds(decoded: Sequence[FrameRecord], times: np.ndarray) -> dict[str, float]:
    """Seconds shown at each rung of the ladder (a frame's rung until the next frame)."""
    out: dict[str, float] = {}
    for frame, start, end in zip(decoded, times[:-1], times[1:], strict=False):
        if frame.rung is not None:
            out[frame.rung] = out.get(frame.rung, 0.0) + float(end - start)
    return {rung: round(seconds, 2) for rung, seconds in out.items()}


def _queueing(frames: Sequence[FrameRecord], origin: float) -> tuple[list[float], list[float]]:
    pairs = sorted(
        (f.timestamps["frame_complete"] - origin,
         f.timestamps["frame_complete"] - f.timestamps["last_packet_sent"])
        for f in frames
        if "frame_complete" in f.timestamps and "last_packet_sent" in f.timestamps
    )
    if not pairs:
        return [], []
    trips = np.array([trip for _, trip in pairs])
    base = float(np.percentile(trips, 2))
    return [t for t, _ in pairs], [max(float(trip) - base, 0.0) for trip in trips]


def _delivered(times: np.ndarray, sizes: np.ndarray) -> tuple[list[float], list[float]]:
    """Delivered bits/s in sliding windows of 0.5 s, at each window's end."""
    if sizes.sum() == 0:
        return [], []
    out_t: list[float] = []
    out_r: list[float] = []
    t = float(times[0]) + _WINDOW_S
    while t <= times[-1]:
        mask = (times > t - _WINDOW_S) & (times <= t)
        out_t.append(t)
        out_r.append(float(sizes[mask].sum()) * 8 / _WINDOW_S)
        t += _SERIES_STEP_S
    return out_t, out_r


def _steps(
    capacity: Capacity, start: float, end: float, queue_times: list[float],
    queueing: list[float], window_t: list[float], delivered: list[float], configured: float,
) -> list[dict[str, Any]]:
    steps = capacity.steps(start, end)
    out: list[dict[str, Any]] = []
    for i, (at, before, rate) in enumerate(steps):
        until = steps[i + 1][0] if i + 1 < len(steps) else end
        step: dict[str, Any] = {"t": round(at, 2), "from_mbps": round(before / 1e6, 2),
                                "to_mbps": round(rate / 1e6, 2)}
        if rate < before:
            step["drain_s"] = _drain(at, until, queue_times, queueing)
            late = [q for t, q in zip(queue_times, queueing, strict=True) if at + 1 <= t < until]
            step["queueing_ms_after_1s_max"] = round(max(late) * 1000, 1) if late else None
        elif configured:
            step["recover_s"] = next(
                (round(t - at, 2) for t, r in zip(window_t, delivered, strict=True)
                 if t >= at + _WINDOW_S and r >= RECOVERED * min(configured, rate)),
                None,
            )
        out.append(step)
    return out


def _drain(at: float, until: float, times: list[float], queueing: list[float]) -> float | None:
    """Seconds from ``at`` until queueing stays under DRAINED_S up to ``until``."""
    inside = [(t, q) for t, q in zip(times, queueing, strict=True) if at <= t < until]
    if not inside:
        return None
    last_high = max((t for t, q in inside if q >= DRAINED_S), default=None)
    if last_high is None:
        return 0.0
    if last_high >= inside[-1][0]:
        return None  # never drained before the next step
    return round(last_high - at, 2)


def _series(
    capacity: Capacity, decoded: Sequence[FrameRecord], times: np.ndarray,
    window_t: list[float], delivered: list[float], start: float, end: float,
) -> list[list[float | None]]:
    """[t, capacity Mbit/s, target Mbit/s, delivered Mbit/s] every 0.25 s."""
    targets = [(float(t), f.cc_target) for t, f in zip(times, decoded, strict=True)]
    rows: list[list[float | None]] = []
    t = start
    j = 0
    while t <= end:
        while j + 1 < len(targets) and targets[j + 1][0] <= t:
            j += 1
        target = targets[j][1]
        rate = next((r for wt, r in zip(window_t, delivered, strict=True) if wt >= t), None)
        rows.append([round(t, 2), round(capacity.at(t) / 1e6, 3),
                     None if target is None else round(target / 1e6, 3),
                     None if rate is None else round(rate / 1e6, 3)])
        t += _SERIES_STEP_S
    return rows


__all__ = ["extras_capacity", "link_extras", "link_stats", "profile_capacity"]
