"""What a benchmark run measures: profiles × sweep cells × stacks, and how.

A *cell* is one encoder setting (codec, resolution, fps, bitrate); several
values per setting make a matrix, each combination one cell and one row per
profile in the summary.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloudarcade.server.options import (
    OptionError,
    parse_bitrate,
    parse_codec,
    parse_fps,
    parse_resolution,
)

# A profile name that means "no relay at all" (the calibration baseline).
NO_RELAY = "none"

DEFAULT_PROFILES = ("ideal", "5g-sa", "lte")


def _mbit(bitrate: int) -> str:
    if bitrate % 1_000_000 == 0:
        return f"{bitrate // 1_000_000}M"
    if bitrate % 1_000 == 0:
        return f"{bitrate // 1_000}k"
    return str(bitrate)


@dataclass(frozen=True)
class Cell:
    """One encoder setting of the sweep."""

    codec: str
    width: int
    height: int
    fps: int
    bitrate: int

    @property
    def name(self) -> str:
        return f"{self.codec}-{self.width}x{self.height}-{self.fps}fps-{_mbit(self.bitrate)}"

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


def parse_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise OptionError(f"expected a comma-separated list without empty items, got {text!r}")
    return items


def build_cells(codecs: str, resolutions: str, fps: str, bitrates: str) -> list[Cell]:
    """Every combination of the comma-separated values; errors name the bad one."""
    codec_values = [parse_codec(c) for c in parse_list(codecs)]
    sizes = [parse_resolution(r) for r in parse_list(resolutions)]
    fps_values = [parse_fps(f) for f in parse_list(fps)]
    rates = [parse_bitrate(b) for b in parse_list(bitrates)]
    return [
        Cell(codec, w, h, f, b)
        for codec, (w, h), f, b in itertools.product(codec_values, sizes, fps_values, rates)
    ]


@dataclass
class BenchConfig:
    """All the knobs of one run; recorded in metadata.json as they were."""

    out: Path
    profiles: list[str] = field(default_factory=lambda: list(DEFAULT_PROFILES))
    cells: list[Cell] = field(default_factory=lambda: [Cell("h264", 1280, 720, 60, 8_000_000)])
    stacks: list[str] = field(default_factory=lambda: ["tuned", "stock"])
    # Bench clients by name (bench/clients.py): headless, chromium.
    clients: list[str] = field(default_factory=lambda: ["headless"])
    game: str = "probe"
    probes: int = 80
    # Probes are sent open-loop at this mean interval, jittered ±50% so they
    # fall at every phase of the game tick.
    probe_interval: float = 0.15
    probe_timeout: float = 1.0
    warmup: float = 2.0
    seed: int = 1
    sample_every: int = 60
    metrics_port: int | None = None
    extra_profiles: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["cells"] = [cell.name for cell in self.cells]
        data["extra_profiles"] = str(self.extra_profiles) if self.extra_profiles else None
        return data
