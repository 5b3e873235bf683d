"""``cloudarcade bench --calibrate``: does the harness measure what it adds?

It runs the probe game with no relay, through the relay with nothing added
(``ideal``), and through constant one-way delays of d ms each way. Adding d
each way must move the input-to-photon median by 2d; the error of that shift
is the harness's own error. The relay's own cost is ideal minus no relay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cloudarcade.bench.records import ProbeRecord
from cloudarcade.bench.report import CALIBRATION_FILE
from cloudarcade.bench.scenario import NO_RELAY

DELAYS_MS = (10, 25)
TOLERANCE_MS = 2.0


def profile_name(delay_ms: int) -> str:
    return f"calib-{delay_ms}ms"


def calibration_profiles() -> list[str]:
    return [NO_RELAY, "ideal", *(profile_name(d) for d in DELAYS_MS)]


def write_profiles(path: Path) -> Path:
    """The constant-delay profiles as a TOML file for the server's ``--profiles``."""
    lines = ["# Written by cloudarcade bench --calibrate: constant delay, nothing else."]
    for d in DELAYS_MS:
        lines += [
            f'\n["{profile_name(d)}"]',
            f'description = "Calibration: constant {d} ms each way."',
            'source = "cloudarcade bench --calibrate"',
            f"delay_ms = {d}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _median_ms(probes: list[ProbeRecord], profile: str) -> float | None:
    values = [p.input_to_photon for p in probes
              if p.profile == profile and p.input_to_photon is not None]
    return float(np.median(values)) * 1000 if values else None


def analyse(probes: list[ProbeRecord]) -> dict[str, Any]:
    """Shift of the median per delay against ``ideal``, and its error against 2d."""
    base = _median_ms(probes, "ideal")
    none = _median_ms(probes, NO_RELAY)
    checks = []
    for d in DELAYS_MS:
        median = _median_ms(probes, profile_name(d))
        shift = None if median is None or base is None else median - base
        error = None if shift is None else shift - 2 * d
        checks.append({
            "delay_ms_each_way": d, "expected_shift_ms": 2 * d,
            "median_ms": median, "measured_shift_ms": shift, "error_ms": error,
            "within_tolerance": None if error is None else abs(error) <= TOLERANCE_MS,
        })
    return {
        "tolerance_ms": TOLERANCE_MS,
        "median_no_relay_ms": none,
        "median_ideal_relay_ms": base,
        "relay_overhead_ms": None if none is None or base is None else base - none,
        "checks": checks,
        "passed": all(c["within_tolerance"] for c in checks),
    }


def write_calibration(out: Path, probes: list[ProbeRecord]) -> dict[str, Any]:
    result = analyse(probes)
    (out / CALIBRATION_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return result
