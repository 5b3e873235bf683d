"""The per-(profile, cell) summary of a run, and ``summary.json``.

Field names are the JSON keys and the report columns. Latencies are seconds;
``None`` means "not measured" (or, for a percentile, that it fell among the
misses: a miss ranks above every measured delay).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

SUMMARY_FILE: Final = "summary.json"
SUMMARY_VERSION: Final = 1
PERCENTILES: Final = ("p50", "p95", "p99", "max")


@dataclass(slots=True)
class Estimate:
    """A statistic with its bootstrap confidence interval (``None`` when not computed)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Estimate:
        if data is None:
            return cls(None)
        return cls(data.get("value"), data.get("low"), data.get("high"))


@dataclass(slots=True)
class LatencyStats:
    """input_to_photon percentiles over all probes, misses included (ranked last).

    ``max`` has no interval: a bootstrap cannot exceed the sample maximum.
    """

    count: int = 0
    misses: int = 0
    mean: float | None = None
    p50: Estimate = field(default_factory=lambda: Estimate(None))
    p95: Estimate = field(default_factory=lambda: Estimate(None))
    p99: Estimate = field(default_factory=lambda: Estimate(None))
    max: Estimate = field(default_factory=lambda: Estimate(None))
    confidence: float = 0.95

    @property
    def miss_rate(self) -> float:
        return self.misses / self.count if self.count else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        return cls(
            count=int(data.get("count", 0)),
            misses=int(data.get("misses", 0)),
            mean=data.get("mean"),
            confidence=float(data.get("confidence", 0.95)),
            **{name: Estimate.from_dict(data.get(name)) for name in PERCENTILES},
        )


@dataclass(slots=True)
class StageCheck:
    """Stage medians against the end-to-end median: reported, never asserted.

    Medians do not add up exactly (the median of a sum is not the sum of the
    medians), so a small ``discrepancy`` is expected; a large one means a
    stage is missing its stamps or the clocks disagree.
    """

    sum_of_medians: float | None = None
    end_to_end_median: float | None = None
    discrepancy: float | None = None  # sum_of_medians - end_to_end_median, seconds

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StageCheck:
        data = data or {}
        return cls(
            data.get("sum_of_medians"), data.get("end_to_end_median"), data.get("discrepancy")
        )


@dataclass(slots=True)
class FrameDelivery:
    """Delivered frame rate and freezes, by the WebRTC full-stack test definitions.

    Gaps are between consecutive decoded frames (``decode_end``). Harmonic fps
    is Σd / Σd²; a freeze is a gap > max(3 x mean gap, mean gap + 150 ms), with
    the running mean of the gaps before it; its duration is the whole gap.
    """

    frames: int = 0
    decoded: int = 0
    duration: float = 0.0
    fps: float | None = None
    harmonic_fps: float | None = None
    freeze_count: int = 0
    freeze_total: float = 0.0
    # (start time, duration) of each freeze, for plots.
    freezes: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FrameDelivery:
        data = dict(data or {})
        data["freezes"] = [(float(a), float(b)) for a, b in data.get("freezes", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(slots=True)
class ProfileSummary:
    """Everything measured for one (profile, cell) of a run.

    ``stack`` is ``"cloudarcade"`` for our path and ``"stock"`` for the stock
    aiortc baseline; ``client`` the bench client that measured it (``headless``,
    ``chromium``: bench/clients.py); ``extra`` carries what the runner passed in (codec,
    resolution, fps, target bitrate, ...).
    """

    profile: str
    cell: str
    stack: str = "cloudarcade"
    client: str = "headless"
    latency: LatencyStats = field(default_factory=LatencyStats)
    stage_medians: dict[str, float] = field(default_factory=dict)
    stage_check: StageCheck = field(default_factory=StageCheck)
    frame_stage_medians: dict[str, float] = field(default_factory=dict)
    timing: FrameDelivery = field(default_factory=FrameDelivery)
    drops_by_phase: dict[str, int] = field(default_factory=dict)
    bitrate_bps: float | None = None
    packet_loss: float | None = None
    psnr_mean: float | None = None
    ssim_mean: float | None = None
    quality_samples: int = 0
    mos: float | None = None
    mos_detail: dict[str, float] = field(default_factory=dict)
    # Bitrate against capacity, queueing, recovery (cloudarcade.bench.linkstats).
    link: dict[str, Any] = field(default_factory=dict)
    # The slowest probes and the stages that made them slow (cloudarcade.bench.tails).
    slowest: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.profile, self.cell)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (no NaN or infinity)."""
        out: dict[str, Any] = _finite(asdict(self))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileSummary:
        try:
            return cls(
                profile=str(data["profile"]),
                cell=str(data["cell"]),
                stack=str(data.get("stack", "cloudarcade")),
                client=str(data.get("client", "headless")),
                latency=LatencyStats.from_dict(data.get("latency", {})),
                stage_medians=dict(data.get("stage_medians", {})),
                stage_check=StageCheck.from_dict(data.get("stage_check")),
                frame_stage_medians=dict(data.get("frame_stage_medians", {})),
                timing=FrameDelivery.from_dict(data.get("timing")),
                drops_by_phase=dict(data.get("drops_by_phase", {})),
                bitrate_bps=data.get("bitrate_bps"),
                packet_loss=data.get("packet_loss"),
                psnr_mean=data.get("psnr_mean"),
                ssim_mean=data.get("ssim_mean"),
                quality_samples=int(data.get("quality_samples", 0)),
                mos=data.get("mos"),
                mos_detail=dict(data.get("mos_detail", {})),
                link=dict(data.get("link", {})),
                slowest=[dict(row) for row in data.get("slowest", [])],
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad summary entry: {exc!r}") from exc


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_summary(
    path: str | os.PathLike[str],
    summaries: list[ProfileSummary],
    **fields: Any,
) -> None:
    """Write ``summary.json``: ``{"version", "summaries": [...], **fields}``."""
    data = {"version": SUMMARY_VERSION, **fields, "summaries": [s.to_dict() for s in summaries]}
    Path(path).write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def read_summary(path: str | os.PathLike[str]) -> list[ProfileSummary]:
    """Read ``summary.json``; errors start with the file name."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data["summaries"] if isinstance(data, dict) else data
        return [ProfileSummary.from_dict(item) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
