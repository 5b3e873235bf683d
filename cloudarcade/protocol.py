"""The data-channel protocol: client inputs and reports, and the server's frame records.

The wire format is documented in ``docs/protocol.md``; this module is its one
implementation. It does no I/O: ``parse()`` turns the payload of one input-channel
message into a frozen dataclass or raises :class:`ProtocolError`, ``encode()``
does the reverse; :meth:`FrameTiming.parse` and :meth:`FrameTiming.to_json` do the
same for the per-frame records on the ``frames`` channel.

A rejected message carries a ``reason`` from :data:`REJECT_REASONS`, a bounded
set meant to be used as a Prometheus label value, and a message naming the field,
what was wrong and what was expected, meant for logs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, TypeAlias

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 1024

CHANNEL_EVENTS: Final = "input-events"
"""Reliable, ordered channel: key events (a lost key-up would leave a key held)."""
CHANNEL_STATE: Final = "input-state"
"""Unordered channel with maxRetransmits=0: pointer and pad messages, which carry
the full state, so a lost message is corrected by the next one."""
FRAMES_CHANNEL: Final = "frames"
"""Server → client, unordered but reliable: one :class:`FrameTiming` record per frame sent."""

REJECT_REASONS: Final = (
    "oversized",
    "not_json",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "out_of_range",
)

SEQ_MAX: Final = 2**31 - 1
MAX_DELTA: Final = 10000.0
MAX_POINTER_BUTTONS: Final = 31
MAX_PAD_INDEX: Final = 3
MAX_PAD_BUTTONS: Final = 32
MAX_PAD_AXES: Final = 8

_CODE_RE: Final = re.compile(r"[A-Za-z0-9]{1,32}")
_CODE_EXPECTED: Final = "a string of 1-32 letters/digits"


class ProtocolError(ValueError):
    """A client message that cannot be accepted.

    ``reason`` is one of :data:`REJECT_REASONS`; ``str(error)`` says which field
    was wrong, how, and what was expected.
    """

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REJECT_REASONS, reason
        super().__init__(message)
        self.reason = reason


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


# --- parsing -------------------------------------------------------------------------


def _show(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _require(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise ProtocolError("malformed", f"field {name!r}: missing")
    return obj[name]


def _int(obj: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = _require(obj, name)
    # bool is an int subclass in Python; true/false are not numbers on the wire.
    if type(value) is not int:
        raise ProtocolError(
            "malformed", f"field {name!r}: expected an integer {lo}..{hi}, got {_show(value)}"
        )
    if not lo <= value <= hi:
        raise ProtocolError(
            "out_of_range", f"field {name!r}: expected an integer {lo}..{hi}, got {value}"
        )
    return value


def _number(value: object, name: str, lo: float, hi: float) -> float:
    expected = f"a finite number {lo:g}..{hi:g}"
    if type(value) not in (int, float):
        raise ProtocolError("malformed", f"field {name!r}: expected {expected}, got {_show(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer literal beyond the float range
        number = math.inf
    if not (math.isfinite(number) and lo <= number <= hi):
        raise ProtocolError("out_of_range", f"field {name!r}: expected {expected}, got {number!r}")
    return number


def _float(obj: dict[str, Any], name: str, lo: float, hi: float) -> float:
    return _number(_require(obj, name), name, lo, hi)


def _float_list(
    obj: dict[str, Any], name: str, max_len: int, lo: float, hi: float
) -> tuple[float, ...]:
    value = _require(obj, name)
    expected = f"a list of up to {max_len} numbers {lo:g}..{hi:g}"
    if not isinstance(value, list):
        raise ProtocolError("malformed", f"field {name!r}: expected {expected}, got {_show(value)}")
    if len(value) > max_len:
        raise ProtocolError(
            "out_of_range", f"field {name!r}: expected {expected}, got {len(value)} items"
        )
    return tuple(_number(item, f"{name}[{i}]", lo, hi) for i, item in enumerate(value))


def _code(obj: dict[str, Any]) -> str:
    value = _require(obj, "code")
    if not isinstance(value, str):
        raise ProtocolError(
            "malformed", f"field 'code': expected {_CODE_EXPECTED}, got {_show(value)}"
        )
    if _CODE_RE.fullmatch(value) is None:
        raise ProtocolError(
            "out_of_range", f"field 'code': expected {_CODE_EXPECTED}, got {_show(value)}"
        )
    return value


def _bool(obj: dict[str, Any], name: str) -> bool:
    value = _require(obj, name)
    if not isinstance(value, bool):
        raise ProtocolError(
            "malformed", f"field {name!r}: expected true or false, got {_show(value)}"
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ProtocolError("not_json", f"message: {name} is not valid JSON, expected finite numbers")


def _decode(data: str | bytes) -> Any:
    if isinstance(data, str):
        # A character is at least one UTF-8 byte: a cheap bound before encoding.
        size = len(data) if len(data) > MAX_MESSAGE_BYTES else len(
            data.encode("utf-8", "surrogatepass")
        )
    elif isinstance(data, (bytes, bytearray, memoryview)):
        size = len(data)
    else:
        raise TypeError(f"parse() takes str or bytes, got {type(data).__name__}")
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            "oversized", f"message: expected at most {MAX_MESSAGE_BYTES} bytes, got {size}"
        )
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("not_json", f"message: expected UTF-8 text, {exc.reason}") from None
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("not_json", f"message: expected a JSON object, {exc}") from None


def parse(data: str | bytes) -> InputEvent | StatsReport:
    """Parse and validate one client message; raise :class:`ProtocolError` if it is invalid.

    Fields the message type does not define are ignored, so that newer clients may
    add optional fields without a version change.
    """
    obj = _decode(data)
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"message: expected a JSON object, got {_show(obj)}")
    version = _require(obj, "v")
    if type(version) is not int:
        raise ProtocolError(
            "malformed", f"field 'v': expected the integer {PROTOCOL_VERSION}, got {_show(version)}"
        )
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"field 'v': expected protocol version {PROTOCOL_VERSION}, got {version}",
        )
    kind = _require(obj, "t")
    if not isinstance(kind, str):
        raise ProtocolError("malformed", f"field 't': expected a type name, got {_show(kind)}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(
            "unknown_type",
            f"field 't': expected one of {', '.join(_PARSERS)}, got {_show(kind)}",
        )
    return parser(obj)


def _ts(obj: dict[str, Any]) -> float:
    return _float(obj, "ts", 0.0, math.inf)


def _seq(obj: dict[str, Any]) -> int:
    return _int(obj, "seq", 1, SEQ_MAX)


def _parse_key(obj: dict[str, Any]) -> KeyEvent:
    return KeyEvent(seq=_seq(obj), ts=_ts(obj), code=_code(obj), down=_bool(obj, "down"))


def _parse_pointer(obj: dict[str, Any]) -> PointerEvent:
    return PointerEvent(
        seq=_seq(obj),
        ts=_ts(obj),
        x=_float(obj, "x", 0.0, 1.0),
        y=_float(obj, "y", 0.0, 1.0),
        dx=_float(obj, "dx", -MAX_DELTA, MAX_DELTA),
        dy=_float(obj, "dy", -MAX_DELTA, MAX_DELTA),
        buttons=_int(obj, "buttons", 0, MAX_POINTER_BUTTONS),
    )


def _parse_pad(obj: dict[str, Any]) -> PadEvent:
    return PadEvent(
        seq=_seq(obj),
        ts=_ts(obj),
        index=_int(obj, "index", 0, MAX_PAD_INDEX),
        buttons=_float_list(obj, "buttons", MAX_PAD_BUTTONS, 0.0, 1.0),
        axes=_float_list(obj, "axes", MAX_PAD_AXES, -1.0, 1.0),
    )


def _parse_stats(obj: dict[str, Any]) -> StatsReport:
    fields: dict[str, Any] = {}
    for name in _STATS_FLOATS:
        # null means "not measured", like a missing field: JavaScript clients produce it.
        if obj.get(name) is not None:
            fields[name] = _float(obj, name, 0.0, math.inf)
    for name in _STATS_COUNTS:
        if obj.get(name) is not None:
            fields[name] = _int(obj, name, 0, 2**53)
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


# --- frame records (server → client) ----------------------------------------------


@dataclass
class FrameTiming:
    """Server-side timestamps (``time.monotonic()`` seconds) of one frame.

    The field names are the stage timestamps of :mod:`cloudarcade.stages`.
    ``input_seq`` is the last input the game had applied when the frame was
    rendered; ``input_recv`` is when that input reached the server, set only
    on the frame of the tick that applied it. The server fills the record in
    as the frame moves on (so it is mutable) and sends it once the frame's last
    packet is out.
    """

    frame_id: int
    input_seq: int = 0
    input_recv: float | None = None
    tick_start: float = 0.0
    sim_end: float = 0.0
    render_end: float = 0.0
    convert_end: float = 0.0
    encode_start: float | None = None
    encode_end: float | None = None
    packetized: float | None = None
    last_packet_sent: float | None = None
    size_bytes: int = 0
    keyframe: bool = False
    # The viewer's congestion controller when the frame left (tuned stack):
    # target bits/s and estimated queueing delay (s); None without one.
    cc_target: float | None = None
    cc_queueing: float | None = None

    def copy(self) -> FrameTiming:
        return replace(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=False)

    @classmethod
    def parse(cls, data: str | bytes) -> FrameTiming:
        """Read and validate one record; raises :class:`ProtocolError` naming the bad field.

        Fields the record does not define are ignored, as in input messages.
        """
        obj = _decode(data)
        if not isinstance(obj, dict):
            raise ProtocolError("malformed", f"frame record: expected a JSON object, "
                                             f"got {_show(obj)}")
        fields: dict[str, Any] = {
            "frame_id": _int(obj, "frame_id", 0, 2**53),
            "input_seq": _int(obj, "input_seq", 0, SEQ_MAX),
            "size_bytes": _int(obj, "size_bytes", 0, 2**53),
            "keyframe": _bool(obj, "keyframe"),
        }
        for name in _RECORD_STAMPS:
            fields[name] = _float(obj, name, 0.0, math.inf)
        for name in _RECORD_OPTIONAL_STAMPS:
            if obj.get(name) is not None:
                fields[name] = _float(obj, name, 0.0, math.inf)
        for name, high in (("cc_target", 1e12), ("cc_queueing", 3600.0)):
            if obj.get(name) is not None:
                fields[name] = _float(obj, name, 0.0, high)
        return cls(**fields)

    def stamps(self) -> dict[str, float]:
        """The timestamps that are set, by stage-timestamp name."""
        out: dict[str, float] = {}
        for name in _STAMP_ORDER:
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        return out


_RECORD_STAMPS: Final = ("tick_start", "sim_end", "render_end", "convert_end")
_RECORD_OPTIONAL_STAMPS: Final = (
    "input_recv", "encode_start", "encode_end", "packetized", "last_packet_sent",
)
# Path order, as the record's fields are.
_STAMP_ORDER: Final = ("input_recv", *_RECORD_STAMPS, *_RECORD_OPTIONAL_STAMPS[1:])
