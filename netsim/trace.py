"""Mahimahi link traces: read strictly, write, and summarise.

Format (Mahimahi's): one line per delivery opportunity, the integer millisecond
at which one 1500-byte packet may leave; lines are non-decreasing; the trace
repeats with a period equal to its last timestamp.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

#: Bytes one delivery opportunity carries (Mahimahi's MTU).
OPPORTUNITY_BYTES = 1500


@dataclass(frozen=True)
class Trace:
    """A loaded trace: opportunity times in ms within one period."""

    times_ms: tuple[int, ...]
    source: str = "<memory>"

    @property
    def period_ms(self) -> int:
        return self.times_ms[-1]

    @property
    def mean_rate_bps(self) -> float:
        """Average capacity over one period, bits/s."""
        return len(self.times_ms) * OPPORTUNITY_BYTES * 8 / (self.period_ms / 1000.0)

    def text(self) -> str:
        """The trace in Mahimahi's file format (what ``parse_trace`` reads)."""
        return "".join(f"{t}\n" for t in self.times_ms)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.text())


def parse_trace(text: str, source: str = "<memory>") -> Trace:
    """Parse trace text; errors read ``<source>:<line>: <what was expected>``."""
    times: list[int] = []
    last = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        # ASCII only: str.isdigit() also accepts digits like '²' that int() refuses.
        if not (line.isascii() and line.isdigit()):
            raise ValueError(
                f"{source}:{lineno}: expected a non-negative integer millisecond, got {raw!r}"
            )
        t = int(line)
        if t < last:
            raise ValueError(
                f"{source}:{lineno}: timestamps must not decrease, got {t} after {last}"
            )
        times.append(t)
        last = t
    if not times:
        raise ValueError(f"{source}: empty trace, expected at least one line")
    if times[-1] == 0:
        raise ValueError(
            f"{source}:{len(times)}: the last timestamp is the loop period and must be > 0"
        )
    return Trace(tuple(times), source)


def load_trace(path: str | Path) -> Trace:
    """Read a Mahimahi trace file strictly (see ``parse_trace``).

    Cached by path and modification time: validating a profile file and then
    building its chains would otherwise parse every trace twice.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read trace: {exc.strerror}") from exc
    return _load_trace(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _load_trace(path: Path, mtime_ns: int, size: int) -> Trace:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read trace: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    return parse_trace(text, str(path))
