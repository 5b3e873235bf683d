"""The browser's own stages of a frame, on the bench's clock.

Chromium tells us two things about the frames it shows. Per frame, from
``requestVideoFrameCallback``: ``receiveTime`` (the frame's last packet
arrived), ``processingDuration`` (its decode) and ``presentationTime`` (handed
to the compositor: the photon). Per window, from ``getStats()`` deltas of the
video receiver's cumulative counters: the mean jitter-buffer delay per emitted
frame (``jitterBufferDelay / jitterBufferEmittedCount``, which counts from the
frame's first packet, so the mean assembly time ``totalAssemblyTime /
framesAssembledFromMultiplePackets`` is taken off) and the mean decode time.

A frame's stamps, in the names of :mod:`cloudarcade.stages`:

- ``frame_complete`` = receiveTime;
- ``decode_start`` = frame_complete + the window's jitter-buffer mean
  (stage ``reassembly``);
- ``decode_end`` = decode_start + the frame's processingDuration (else the
  window's decode mean) (stage ``decode``);
- ``photon`` = presentationTime; the rest, decode_end → photon, is the wait for
  presentation (stage ``present``).

Each is clipped to the photon, so the stages add up to the end-to-end delay
exactly; the jitter-buffer split is a window mean, not the frame's own.
Sans-I/O: times come in as page milliseconds with a :class:`ClockOffset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudarcade.bench.clock_map import ClockOffset
from cloudarcade.stages import DECODE_END, DECODE_START, FRAME_COMPLETE, PHOTON


def _number(data: dict[str, Any], key: str, *, optional: bool = False) -> float | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"page frame: {key!r} must be a number, got {value!r}")
    return float(value)


def _count(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what}: {key!r} must be an integer >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class PageFrame:
    """One frame the page presented, with its frame code (client/web/js/framewatch.js).

    Times in page ms, ``processing`` in seconds as requestVideoFrameCallback gives it.
    """

    frame_id: int
    input_seq: int
    presented: float
    received: float | None = None
    processing: float | None = None

    @classmethod
    def parse(cls, data: Any) -> PageFrame:
        """From the page's JSON; ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"page frame: expected an object, got {type(data).__name__}")
        presented = _number(data, "presented")
        assert presented is not None
        return cls(
            frame_id=_count(data, "id", "page frame"), input_seq=_count(data, "seq", "page frame"),
            presented=presented, received=_number(data, "received", optional=True),
            processing=_number(data, "processing", optional=True),
        )


@dataclass(frozen=True)
class ReceiverWindow:
    """Per-frame means over one getStats window, in seconds (None: not known)."""

    jitter_buffer: float | None = None
    decode: float | None = None
    target: float | None = None
    frames: int = 0


def _delta(before: dict[str, Any] | None, after: dict[str, Any], key: str) -> float | None:
    now = after.get(key)
    if not isinstance(now, int | float):
        return None
    then = before.get(key) if before else 0
    return float(now) - float(then if isinstance(then, int | float) else 0)


def _ratio(total: float | None, count: float | None) -> float | None:
    if total is None or not count or count <= 0:
        return None
    return max(total / count, 0.0)


def receiver_window(before: dict[str, Any] | None, after: dict[str, Any]) -> ReceiverWindow:
    """The means between two counter snapshots (``before`` None: since the start)."""
    emitted = _delta(before, after, "jitterBufferEmittedCount")
    jitter = _ratio(_delta(before, after, "jitterBufferDelay"), emitted)
    assembly = _ratio(_delta(before, after, "totalAssemblyTime"),
                      _delta(before, after, "framesAssembledFromMultiplePackets"))
    if jitter is not None and assembly is not None and emitted:
        # Assembly happens to the frames of several packets only: spread it over all.
        multi = _delta(before, after, "framesAssembledFromMultiplePackets") or 0.0
        jitter = max(jitter - assembly * multi / emitted, 0.0)
    return ReceiverWindow(
        jitter_buffer=jitter,
        decode=_ratio(_delta(before, after, "totalDecodeTime"),
                      _delta(before, after, "framesDecoded")),
        target=_ratio(_delta(before, after, "jitterBufferTargetDelay"), emitted),
        frames=int(emitted or 0),
    )


def frame_stamps(frame: PageFrame, clock: ClockOffset, window: ReceiverWindow) -> dict[str, float]:
    """The frame's client stamps on the bench's clock (see the module docstring)."""
    photon = clock.to_local(frame.presented / 1000)
    stamps = {PHOTON: photon}
    if frame.received is None:
        return stamps
    complete = min(clock.to_local(frame.received / 1000), photon)
    decode = frame.processing if frame.processing is not None else (window.decode or 0.0)
    start = min(complete + (window.jitter_buffer or 0.0), photon)
    stamps[FRAME_COMPLETE] = complete
    stamps[DECODE_START] = start
    stamps[DECODE_END] = min(start + decode, photon)
    return stamps
