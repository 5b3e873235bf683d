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

DEFAULT_PROFILES = ("ideal", "5g-sa", "lte", "dip")
# Realistic demand: full-screen motion and texture, more than 8 Mbit/s at 720p60.
DEFAULT_GAME = "terrain"
DEFAULT_CC = "gcc"
# Joins a stack and its congestion controller in a variant's label: "tuned+none".
VARIANT_SEP = "+"


def expand_variants(stacks: list[str], ccs: list[str]) -> list[str]:
    """The run's stack variants: "tuned" once per controller when there are several
    ("tuned+none", "tuned+gcc"), else "tuned"; "stock" as it is (aiortc's own REMB)."""
    out: list[str] = []
    for stack in stacks:
        if stack == "tuned" and len(ccs) > 1:
            out += [f"{stack}{VARIANT_SEP}{cc}" for cc in ccs]
        else:
            out.append(stack)
    return out


def split_variant(label: str, default_cc: str | None = None) -> tuple[str, str | None]:
    """(stack, controller) of a variant label; a bare "tuned" has ``default_cc``."""
    stack, sep, cc = label.partition(VARIANT_SEP)
    if sep:
        return stack, cc
    return stack, (default_cc if stack == "tuned" else None)


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
    # Stack variants (see expand_variants); ``ccs`` the controllers of the tuned stack.
    stacks: list[str] = field(default_factory=lambda: ["tuned", "stock"])
    # Bench clients by name (bench/clients.py): headless, chromium.
    clients: list[str] = field(default_factory=lambda: ["headless"])
    ccs: list[str] = field(default_factory=lambda: [DEFAULT_CC])
    # The server's resolution/frame-rate ladder with an adapting controller: on or off.
    ladder: str = "on"
    # FEC parity for the Python client's video (docs/fec.md): auto or off.
    fec: str = "auto"
    game: str = DEFAULT_GAME
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

    @property
    def primary_variant(self) -> str:
        """The variant whose results go in ``out`` itself and lead the report."""
        tuned = [s for s in self.stacks if s != "stock"]
        preferred = f"tuned{VARIANT_SEP}{DEFAULT_CC}"
        if preferred in tuned:
            return preferred
        return tuned[0] if tuned else "stock"

    def cc_of(self, label: str) -> str | None:
        return split_variant(label, self.ccs[0] if len(self.ccs) == 1 else None)[1]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["cells"] = [cell.name for cell in self.cells]
        data["extra_profiles"] = str(self.extra_profiles) if self.extra_profiles else None
        return data
