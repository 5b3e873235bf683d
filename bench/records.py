"""The per-probe and per-frame records of a benchmark run.

One schema serves the JSONL files, the summary and the report columns: the
field names below are the JSON keys, and the timestamp keys are the names in
:mod:`cloudarcade.stages` (``input_sent`` ... ``photon``). All times are seconds
on one clock (``time.monotonic()``); sizes are bytes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from cloudarcade.stages import TIMESTAMPS

# Where a frame that never reached the screen was lost.
DROP_ENCODE_SKIP: Final = "encode_skip"  # the encoder (or the game loop) skipped it
DROP_NETWORK: Final = "network"  # packets lost and never repaired
DROP_DECODE: Final = "decode"  # arrived, but the decoder failed or discarded it
# Sent, and the client saw no picture of it, without knowing why: Chromium shows
# the page only the frames its compositor paints (two decoded in one vsync: one
# painted), so a frame it lost, or decoded late, or decoded and never painted
# all look the same.
DROP_UNSHOWN: Final = "unshown"
DROP_PHASES: Final = (DROP_ENCODE_SKIP, DROP_NETWORK, DROP_DECODE, DROP_UNSHOWN)

_KNOWN_STAMPS: Final = frozenset(TIMESTAMPS)


def _stamps(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: timestamps must be an object, not {type(value).__name__}")
    out: dict[str, float] = {}
    for key, stamp in value.items():
        if key not in _KNOWN_STAMPS:
            raise ValueError(f"{where}: unknown timestamp {key!r} (known: {', '.join(TIMESTAMPS)})")
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise ValueError(f"{where}: timestamp {key!r} is not a number: {stamp!r}")
        out[key] = float(stamp)
    return out


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise ValueError(f"{where}: field {key!r} has the wrong type: {value!r}")
    return value


@dataclass(slots=True)
class ProbeRecord:
    """One input probe and what became of it.

    Fields:
        profile: network profile name (``ideal``, ``5g-sa``, ...).
        cell: sweep cell name, e.g. ``h264-1280x720-60fps-8M``.
        probe: index of the probe within its (profile, cell), from 0.
        input_seq: sequence number of the input event the probe sent.
        timestamps: stamps keyed by :data:`cloudarcade.stages.TIMESTAMPS` names;
            any may be missing (a stamp the path did not report).
        input_to_photon: ``photon - input_sent`` in seconds, ``None`` when missed.
        missed: no photon within the timeout. Misses are counted, never dropped.
        frame_id: id of the first frame that showed the input, ``None`` if missed.
    """

    profile: str
    cell: str
    probe: int
    input_seq: int
    timestamps: dict[str, float] = field(default_factory=dict)
    input_to_photon: float | None = None
    missed: bool = False
    frame_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with the field names as keys."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeRecord:
        """Parse a dict from :meth:`to_dict`; raises ``ValueError`` when malformed."""
        where = "probe record"
        delay = data.get("input_to_photon")
        if delay is not None and (not isinstance(delay, int | float) or isinstance(delay, bool)):
            raise ValueError(f"{where}: input_to_photon is not a number: {delay!r}")
        frame_id = data.get("frame_id")
        if frame_id is not None and not isinstance(frame_id, int):
            raise ValueError(f"{where}: frame_id is not an integer: {frame_id!r}")
        delay_f = None if delay is None else float(delay)
        if delay_f is not None and not math.isfinite(delay_f):
            delay_f = None
        return cls(
            profile=_get(data, "profile", str, where),
            cell=_get(data, "cell", str, where),
            probe=_get(data, "probe", int, where),
            input_seq=_get(data, "input_seq", int, where),
            timestamps=_stamps(data.get("timestamps", {}), where),
            input_to_photon=delay_f,
            missed=bool(data.get("missed", delay_f is None)),
            frame_id=frame_id,
        )


@dataclass(slots=True)
class FrameRecord:
    """One frame the server produced, and whether and when it was shown.

    Fields:
        profile, cell: as in :class:`ProbeRecord`.
        frame_id: the id the frame carries in its pixels.
        input_seq: latest input applied in this frame, ``None`` before any input.
        timestamps: ``tick_start`` ... ``decode_end`` stamps, any may be missing.
        size_bytes: encoded size in bytes (0 when the encoder skipped the frame).
        keyframe: the encoder produced a keyframe (IDR).
        decoded: the client decoded it.
        drop_phase: for a frame not decoded, where it was lost: one of
            :data:`DROP_PHASES`, ``None`` when decoded (or not known).
        psnr: PSNR (dB) of the decoded luma against the server's, when sampled.
        ssim: SSIM of the decoded luma against the server's, when sampled.
        cc_target: the congestion controller's target (bits/s) when the frame
            left the server, ``None`` without one (stock, or none reported).
        cc_queueing: the controller's estimated queueing delay (s) then.
        rung: the size and frame rate it was encoded at, ``WIDTHxHEIGHT@FPS``
            (the ladder's rung, docs/congestion.md); ``None`` when not known.
    """

    profile: str
    cell: str
    frame_id: int
    input_seq: int | None = None
    timestamps: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0
    keyframe: bool = False
    decoded: bool = True
    drop_phase: str | None = None
    psnr: float | None = None
    ssim: float | None = None
    cc_target: float | None = None
    cc_queueing: float | None = None
    rung: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with the field names as keys."""
        out = asdict(self)
        if out["psnr"] is not None and math.isinf(out["psnr"]):
            out["psnr"] = None  # identical frames: JSON has no infinity
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameRecord:
        """Parse a dict from :meth:`to_dict`; raises ``ValueError`` when malformed."""
        where = "frame record"
        input_seq = data.get("input_seq")
        if input_seq is not None and not isinstance(input_seq, int):
            raise ValueError(f"{where}: input_seq is not an integer: {input_seq!r}")
        phase = data.get("drop_phase")
        if phase is not None and not isinstance(phase, str):
            raise ValueError(f"{where}: drop_phase is not a string: {phase!r}")
        rung = data.get("rung")
        if rung is not None and not isinstance(rung, str):
            raise ValueError(f"{where}: rung is not a string: {rung!r}")
        quality: dict[str, float | None] = {}
        for key in ("psnr", "ssim", "cc_target", "cc_queueing"):
            value = data.get(key)
            bad = not isinstance(value, int | float) or isinstance(value, bool)
            if value is not None and bad:
                raise ValueError(f"{where}: {key} is not a number: {value!r}")
            quality[key] = None if value is None else float(value)
        return cls(
            profile=_get(data, "profile", str, where),
            cell=_get(data, "cell", str, where),
            frame_id=_get(data, "frame_id", int, where),
            input_seq=input_seq,
            timestamps=_stamps(data.get("timestamps", {}), where),
            size_bytes=int(data.get("size_bytes", 0)),
            keyframe=bool(data.get("keyframe", False)),
            decoded=bool(data.get("decoded", True)),
            drop_phase=phase,
            psnr=quality["psnr"],
            ssim=quality["ssim"],
            cc_target=quality["cc_target"],
            cc_queueing=quality["cc_queueing"],
            rung=rung,
        )
