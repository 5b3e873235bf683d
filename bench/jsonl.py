"""JSON Lines files that survive an interrupted run.

The writer appends one object per line and flushes every line, so a run that
is killed part-way leaves a file whose complete lines are all valid. The
reader skips a truncated last line (with a warning) and says how many lines it
skipped; a malformed line anywhere else is an error naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar

from .records import FrameRecord, ProbeRecord

logger = logging.getLogger(__name__)

PROBES_FILE = "probes.jsonl"
FRAMES_FILE = "frames.jsonl"


class _Record(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class JsonlWriter:
    """Append records to a JSONL file, one flushed line each.

    ``fsync=True`` also forces each line to disk (survives a machine crash, not
    just a killed process); off by default because it costs a syscall per line.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, record: _Record | Mapping[str, Any]) -> None:
        """Append one record (a dataclass with ``to_dict()`` or a mapping)."""
        if self._file is None:
            raise ValueError(f"{self.path}: writer is closed")
        data = dict(record) if isinstance(record, Mapping) else record.to_dict()
        # allow_nan=False: a NaN would make the line unreadable by strict parsers.
        line = json.dumps(data, separators=(",", ":"), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self.count += 1

    def write_all(self, records: Iterable[_Record | Mapping[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class JsonlContents:
    """What :func:`read_jsonl` found: the objects, and how many lines it skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


def read_jsonl(path: str | os.PathLike[str]) -> JsonlContents:
    """Read a JSONL file of objects; tolerate (skip, warn about) a truncated last line.

    Blank lines are ignored. Raises ``ValueError("<path>:<line>: ...")`` for a
    malformed line that is not the last one: that is corruption, not truncation.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    # A file cut mid-line has no final newline: its last piece is what was cut.
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    out = JsonlContents()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError(f"expected an object, got {type(value).__name__}")
        except ValueError as exc:
            if number - 1 == last:
                logger.warning("%s:%d: skipping truncated last line (%s)", path, number, exc)
                out.skipped += 1
                continue
            raise ValueError(f"{path}:{number}: {exc}") from exc
        out.records.append(value)
    return out


_R = TypeVar("_R")


def _read_records(path: str | os.PathLike[str], parse: Callable[[dict[str, Any]], _R]
                  ) -> tuple[list[_R], int]:
    contents = read_jsonl(path)
    records = []
    for index, data in enumerate(contents.records, start=1):
        try:
            records.append(parse(data))
        except ValueError as exc:
            raise ValueError(f"{path}: record {index}: {exc}") from exc
    return records, contents.skipped


def read_probes(path: str | os.PathLike[str]) -> tuple[list[ProbeRecord], int]:
    """Probe records from ``probes.jsonl`` and the count of skipped lines."""
    return _read_records(path, ProbeRecord.from_dict)


def read_frames(path: str | os.PathLike[str]) -> tuple[list[FrameRecord], int]:
    """Frame records from ``frames.jsonl`` and the count of skipped lines."""
    return _read_records(path, FrameRecord.from_dict)
