"""Client → server messages on the input channels: keys, pointer, pads, stats reports.

``parse()`` turns the payload of one data-channel message into a frozen
dataclass or raises :class:`ProtocolError`; ``encode()`` does the reverse.
The wire format is in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from cloudarcade.protocol.fields import (
    ProtocolError,
    bool_field,
    decode,
    float_field,
    float_list,
    int_field,
    require,
    show,
)

PROTOCOL_VERSION: Final = 1

CHANNEL_EVENTS: Final = "input-events"
"""Reliable, ordered channel: key events (a lost key-up would leave a key held)."""
CHANNEL_STATE: Final = "input-state"
"""Unordered channel with maxRetransmits=0: pointer and pad messages, which carry
the full state, so a lost message is corrected by the next one."""
SEQ_MAX: Final = 2**31 - 1
MAX_DELTA: Final = 10000.0
MAX_POINTER_BUTTONS: Final = 31
MAX_PAD_INDEX: Final = 3
MAX_PAD_BUTTONS: Final = 32
MAX_PAD_AXES: Final = 8

_CODE_RE: Final = re.compile(r"[A-Za-z0-9]{1,32}")
_CODE_EXPECTED: Final = "a string of 1-32 letters/digits"


@dataclass(frozen=True)
class KeyEvent:
    """A key went down (or auto-repeated) or up. ``code`` is a KeyboardEvent.code name."""

    seq: int
    ts: float
    code: str
    down: bool


@dataclass(frozen=True)
class PointerEvent:
    """Pointer state: normalised position (0..1, origin top-left), movement, buttons."""

    seq: int
    ts: float
    x: float
    y: float
    dx: float = 0.0
    dy: float = 0.0
    buttons: int = 0


@dataclass(frozen=True)
class PadEvent:
    """Full state of one gamepad (standard mapping: buttons 0..1, axes -1..1)."""

    seq: int
    ts: float
    index: int
    buttons: tuple[float, ...] = ()
    axes: tuple[float, ...] = ()


@dataclass(frozen=True)
class StatsReport:
    """A client's periodic report of its receive-side figures; every figure is optional."""

    ts: float
    fps: float | None = None
    decode_ms: float | None = None
    jitter_buffer_ms: float | None = None
    freezes: int | None = None
    input_to_photon_ms: float | None = None
    rtt_ms: float | None = None
    packets_lost: int | None = None
    frames_decoded: int | None = None


InputEvent: TypeAlias = KeyEvent | PointerEvent | PadEvent
Message: TypeAlias = KeyEvent | PointerEvent | PadEvent | StatsReport

_STATS_FLOATS: Final = ("fps", "decode_ms", "jitter_buffer_ms", "input_to_photon_ms", "rtt_ms")
_STATS_COUNTS: Final = ("freezes", "packets_lost", "frames_decoded")
# Wire order of the stats figures, as in docs/protocol.md.
STATS_FIELDS: Final = (
    "fps",
    "decode_ms",
    "jitter_buffer_ms",
    "freezes",
    "input_to_photon_ms",
    "rtt_ms",
    "packets_lost",
    "frames_decoded",
)


def channel_for(event: InputEvent) -> str:
    """The data channel a client sends ``event`` on."""
    if isinstance(event, KeyEvent):
        return CHANNEL_EVENTS
    return CHANNEL_STATE



def _code(obj: dict[str, Any]) -> str:
    value = require(obj, "code")
    if not isinstance(value, str):
        raise ProtocolError(
            "malformed", f"field 'code': expected {_CODE_EXPECTED}, got {show(value)}"
        )
    if _CODE_RE.fullmatch(value) is None:
        raise ProtocolError(
            "out_of_range", f"field 'code': expected {_CODE_EXPECTED}, got {show(value)}"
        )
    return value



def parse(data: str | bytes) -> InputEvent | StatsReport:
    """Parse and validate one client message; raise :class:`ProtocolError` if it is invalid.

    Fields the message type does not define are ignored, so that newer clients may
    add optional fields without a version change.
    """
    obj = decode(data)
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"message: expected a JSON object, got {show(obj)}")
    version = require(obj, "v")
    if type(version) is not int:
        raise ProtocolError(
            "malformed", f"field 'v': expected the integer {PROTOCOL_VERSION}, got {show(version)}"
        )
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"field 'v': expected protocol version {PROTOCOL_VERSION}, got {version}",
        )
    kind = require(obj, "t")
    if not isinstance(kind, str):
        raise ProtocolError("malformed", f"field 't': expected a type name, got {show(kind)}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(
            "unknown_type",
            f"field 't': expected one of {', '.join(_PARSERS)}, got {show(kind)}",
        )
    return parser(obj)


def _ts(obj: dict[str, Any]) -> float:
    return float_field(obj, "ts", 0.0, math.inf)


def _seq(obj: dict[str, Any]) -> int:
    return int_field(obj, "seq", 1, SEQ_MAX)


def _parse_key(obj: dict[str, Any]) -> KeyEvent:
    return KeyEvent(seq=_seq(obj), ts=_ts(obj), code=_code(obj), down=bool_field(obj, "down"))


def _parse_pointer(obj: dict[str, Any]) -> PointerEvent:
    return PointerEvent(
        seq=_seq(obj),
        ts=_ts(obj),
        x=float_field(obj, "x", 0.0, 1.0),
        y=float_field(obj, "y", 0.0, 1.0),
        dx=float_field(obj, "dx", -MAX_DELTA, MAX_DELTA),
        dy=float_field(obj, "dy", -MAX_DELTA, MAX_DELTA),
        buttons=int_field(obj, "buttons", 0, MAX_POINTER_BUTTONS),
    )


def _parse_pad(obj: dict[str, Any]) -> PadEvent:
    return PadEvent(
        seq=_seq(obj),
        ts=_ts(obj),
        index=int_field(obj, "index", 0, MAX_PAD_INDEX),
        buttons=float_list(obj, "buttons", MAX_PAD_BUTTONS, 0.0, 1.0),
        axes=float_list(obj, "axes", MAX_PAD_AXES, -1.0, 1.0),
    )


def _parse_stats(obj: dict[str, Any]) -> StatsReport:
    fields: dict[str, Any] = {}
    for name in _STATS_FLOATS:
        # null means "not measured", like a missing field: JavaScript clients produce it.
        if obj.get(name) is not None:
            fields[name] = float_field(obj, name, 0.0, math.inf)
    for name in _STATS_COUNTS:
        if obj.get(name) is not None:
            fields[name] = int_field(obj, name, 0, 2**53)
    return StatsReport(ts=_ts(obj), **fields)


_PARSERS: Final[dict[str, Callable[[dict[str, Any]], Message]]] = {
    "key": _parse_key,
    "pointer": _parse_pointer,
    "pad": _parse_pad,
    "stats": _parse_stats,
}


# --- encoding -------------------------------------------------------------------------


def to_dict(msg: Message) -> dict[str, Any]:
    """The JSON object for ``msg``, with ``v`` and ``t`` first."""
    out: dict[str, Any] = {"v": PROTOCOL_VERSION}
    if isinstance(msg, KeyEvent):
        out.update(t="key", seq=msg.seq, ts=msg.ts, code=msg.code, down=msg.down)
    elif isinstance(msg, PointerEvent):
        out.update(
            t="pointer", seq=msg.seq, ts=msg.ts, x=msg.x, y=msg.y, dx=msg.dx, dy=msg.dy,
            buttons=msg.buttons,
        )
    elif isinstance(msg, PadEvent):
        out.update(
            t="pad", seq=msg.seq, ts=msg.ts, index=msg.index, buttons=list(msg.buttons),
            axes=list(msg.axes),
        )
    elif isinstance(msg, StatsReport):
        out.update(t="stats", ts=msg.ts)
        for name in STATS_FIELDS:
            value = getattr(msg, name)
            if value is not None:
                out[name] = value
    else:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    return out


def encode(msg: Message) -> str:
    """Compact JSON for ``msg``; ``parse(encode(msg)) == msg`` for every valid message."""
    return json.dumps(to_dict(msg), separators=(",", ":"), allow_nan=False)
