"""The relay process's control channel: JSON objects, one per line (sans-I/O).

The parent sends requests ``{"id": N, "op": OP, ...}``; the relay process
answers each with ``{"id": N, "ok": RESULT}`` or ``{"id": N, "error": TEXT}``,
and sends events of its own as ``{"event": NAME, ...}`` (the first is
``ready``). Operations (see ``netsim.engine``): ``open``, ``upstream``,
``forward``, ``stats``, ``close``, ``process``.

A profile crosses the channel pickled (base64): the relay process is the
parent's own child, started from the same code, so it trusts what it gets.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Iterator
from typing import Any

from .profile import Profile

Address = tuple[str, int]
Message = dict[str, Any]

#: A line longer than this is refused: the channel carries small objects only.
MAX_LINE = 1 << 20


class ControlError(ValueError):
    """A malformed control message; the text says what was expected."""


def encode(message: Message) -> bytes:
    """One line of compact JSON."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def address(value: object, what: str) -> Address:
    """``[host, port]`` from JSON -> (host, port); ControlError naming ``what`` if not."""
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and 0 <= value[1] <= 65535
    ):
        return value[0], value[1]
    raise ControlError(f"{what}: expected [host, port], got {value!r}")


def pack_profile(profile: Profile) -> str:
    return base64.b64encode(pickle.dumps(profile)).decode()


def unpack_profile(text: object) -> Profile:
    if not isinstance(text, str):
        raise ControlError(f"profile: expected a base64 string, got {type(text).__name__}")
    profile = pickle.loads(base64.b64decode(text))  # our own parent's data
    if not isinstance(profile, Profile):
        raise ControlError(f"profile: expected a Profile, got {type(profile).__name__}")
    return profile


class LineReader:
    """Bytes in, messages out; a partial line waits for the rest."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[Message]:
        """Yield each complete message in ``data``; raises ControlError on a bad one."""
        self._buffer += data
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                if len(self._buffer) > MAX_LINE:
                    raise ControlError(f"control line longer than {MAX_LINE} bytes")
                return
            self._buffer = rest
            if line.strip():
                yield parse(line)


def parse(line: bytes) -> Message:
    """One line -> a message object; ControlError if it is not a JSON object."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"control line is not JSON ({exc}): {line[:80]!r}") from None
    if not isinstance(message, dict):
        raise ControlError(f"control line: expected a JSON object, got {line[:80]!r}")
    return message
