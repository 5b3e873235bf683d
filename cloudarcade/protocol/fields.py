"""Field checks shared by every message of the data-channel protocol.

Each check takes the decoded JSON object and a field name and returns the
value or raises :class:`ProtocolError` naming the field, what was wrong and
what was expected; the error's ``reason`` is from the bounded
:data:`REJECT_REASONS` (a metric label).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_MESSAGE_BYTES: Final = 1024

REJECT_REASONS: Final = (
    "oversized",
    "not_json",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "out_of_range",
)


class ProtocolError(ValueError):
    """A client message that cannot be accepted.

    ``reason`` is one of :data:`REJECT_REASONS`; ``str(error)`` says which field
    was wrong, how, and what was expected.
    """

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REJECT_REASONS, reason
        super().__init__(message)
        self.reason = reason



def show(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise ProtocolError("malformed", f"field {name!r}: missing")
    return obj[name]


def int_field(obj: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = require(obj, name)
    # bool is an int subclass in Python; true/false are not numbers on the wire.
    if type(value) is not int:
        raise ProtocolError(
            "malformed", f"field {name!r}: expected an integer {lo}..{hi}, got {show(value)}"
        )
    if not lo <= value <= hi:
        raise ProtocolError(
            "out_of_range", f"field {name!r}: expected an integer {lo}..{hi}, got {value}"
        )
    return value


def number(value: object, name: str, lo: float, hi: float) -> float:
    expected = f"a finite number {lo:g}..{hi:g}"
    if type(value) not in (int, float):
        raise ProtocolError("malformed", f"field {name!r}: expected {expected}, got {show(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer literal beyond the float range
        number = math.inf
    if not (math.isfinite(number) and lo <= number <= hi):
        raise ProtocolError("out_of_range", f"field {name!r}: expected {expected}, got {number!r}")
    return number


def float_field(obj: dict[str, Any], name: str, lo: float, hi: float) -> float:
    return number(require(obj, name), name, lo, hi)


def float_list(
    obj: dict[str, Any], name: str, max_len: int, lo: float, hi: float
) -> tuple[float, ...]:
    value = require(obj, name)
    expected = f"a list of up to {max_len} numbers {lo:g}..{hi:g}"
    if not isinstance(value, list):
        raise ProtocolError("malformed", f"field {name!r}: expected {expected}, got {show(value)}")
    if len(value) > max_len:
        raise ProtocolError(
            "out_of_range", f"field {name!r}: expected {expected}, got {len(value)} items"
        )
    return tuple(number(item, f"{name}[{i}]", lo, hi) for i, item in enumerate(value))



def bool_field(obj: dict[str, Any], name: str) -> bool:
    value = require(obj, name)
    if not isinstance(value, bool):
        raise ProtocolError(
            "malformed", f"field {name!r}: expected true or false, got {show(value)}"
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ProtocolError("not_json", f"message: {name} is not valid JSON, expected finite numbers")


def decode(data: str | bytes) -> Any:
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
