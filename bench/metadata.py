"""``metadata.json``: what was run, with what, where (Pantheon's habit)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from cloudarcade import __version__
from cloudarcade.bench.report import METADATA_FILE
from cloudarcade.bench.scenario import BenchConfig

_PACKAGES = ("aiortc", "aioice", "av", "numpy", "pygame", "scipy", "uvloop", "aiohttp")


def git_state(directory: Path) -> dict[str, Any]:
    """The git revision of ``directory`` and whether the tree had changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=directory,
                               capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev, "dirty": bool(dirty.strip())}


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(), "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "cpu_model": model, "hostname": platform.node(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"cloudarcade": __version__}
    for name in _PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_metadata(config: BenchConfig, *, started: float, finished: float | None,
                   interrupted: bool = False, extra: dict[str, Any] | None = None) -> Path:
    """Write ``metadata.json``; ``extra`` adds sections (a cluster run's nodes and units)."""
    data = {
        "args": config.to_dict(),
        "seed": config.seed,
        "argv": sys.argv,
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        "finished": datetime.fromtimestamp(finished, UTC).isoformat() if finished else None,
        "interrupted": interrupted,
        "clock": "time.monotonic (CLOCK_MONOTONIC), server and client on one machine",
        "versions": versions(),
        "git": git_state(Path(__file__).resolve().parent),
        "machine": machine(),
        **(extra or {}),
    }
    path = config.out / METADATA_FILE
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
