"""Mahimahi-style event logs, one file per direction.

Lines (times in ms since the relay started, fractional)::

    <ms> + <bytes>              arrival
    <ms> - <bytes> <delay_ms>   departure, with the packet's time in the relay
    <ms> d <bytes>              drop (the reason follows as a comment: ``# loss``)

Mahimahi's plotting scripts read the first three fields; the drop reason is
extra, after ``#``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TextIO


def log_paths(path: Path) -> dict[str, Path]:
    """``run.log`` -> ``run.uplink.log`` and ``run.downlink.log``."""
    return {d: path.with_name(f"{path.stem}.{d}{path.suffix}") for d in ("uplink", "downlink")}


class EventLog:
    """Appends events from any thread; ``base`` is the relay's start time (s)."""

    def __init__(self, path: Path, base: float, header: str) -> None:
        self.path = path
        self.base = base
        self._lock = threading.Lock()
        self._fh: TextIO | None = path.open("w", buffering=1 << 16)
        self._fh.write(f"# {header}\n# base timestamp: {int(time.time() * 1000)}\n")

    def _write(self, line: str) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.write(line)

    def arrival(self, t: float, size: int) -> None:
        self._write(f"{(t - self.base) * 1e3:.3f} + {size}\n")

    def departure(self, t: float, size: int, delay: float) -> None:
        self._write(f"{(t - self.base) * 1e3:.3f} - {size} {delay * 1e3:.3f}\n")

    def drop(self, t: float, size: int, reason: str) -> None:
        self._write(f"{(t - self.base) * 1e3:.3f} d {size} # {reason}\n")

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
