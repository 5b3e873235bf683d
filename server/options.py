"""Session options: what a client may ask for, parsed and checked.

The same parser serves the CLI flags and the ``/offer`` body, so an error
reads the same wherever it came from: it names the field, the value and what
was expected.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from cloudarcade import stacks
from cloudarcade.cc import CONTROLLERS
from cloudarcade.encoder import CODECS, EncoderConfig, unknown_codec_message
from cloudarcade.server.games import available_games
from cloudarcade.text import short

STACKS = tuple(stacks.STACKS)
ROLES = ("player", "spectator")
# The keys of an /offer body: these, and the session options.
OFFER_FIELDS = ("sdp", "type", "role", "join", "token")
OPTION_FIELDS = ("game", "resolution", "fps", "codec", "bitrate", "stack", "cc", "ladder",
                 "fec", "seed", "profile")
# FEC parity for clients that ask for it (docs/fec.md): auto (while the link loses
# packets), on (always) or off.
FEC_MODES = ("auto", "on", "off")
SWITCH = {"on": True, "off": False}
MAX_WIDTH, MAX_HEIGHT = 3840, 2160

_RESOLUTION = re.compile(r"([0-9]{2,5})x([0-9]{2,5})")
_BITRATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKmM]?)")


class OptionError(ValueError):
    """A session option is invalid; the message says which and what was expected."""


@dataclass(frozen=True)
class SessionOptions:
    game: str = "pong"
    width: int = 1280
    height: int = 720
    fps: int = 60
    codec: str = "h264"
    bitrate: int = 8_000_000
    stack: str = "tuned"
    # Congestion controller of the tuned stack (cloudarcade.cc registry); the
    # stock stack keeps aiortc's own REMB-driven encoder.
    cc: str = "gcc"
    # Step the resolution and frame rate down when the controller's target is too
    # low for them (cloudarcade.server.ladder); only with an adapting controller.
    ladder: bool = True
    # FEC parity for the video of clients that negotiated it (see FEC_MODES).
    fec: str = "auto"
    seed: int = 0
    # The netsim profile on the media path; None: no relay at all.
    profile: str | None = None

    @property
    def profile_label(self) -> str:
        return self.profile or "none"

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(self.width, self.height, self.fps, self.bitrate)

    def updated(
        self, fields: dict[str, Any], *, profiles: Collection[str] = ()
    ) -> SessionOptions:
        """These options with ``fields`` (raw values from JSON or flags) applied.

        A None value keeps the current one. ``profiles`` are the network
        profile names ``profile`` may take. Unknown keys are an
        :class:`OptionError` naming them: a misspelt option must not be
        silently ignored.
        """
        unknown = sorted(set(fields) - set(OPTION_FIELDS))
        if unknown:
            raise OptionError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))}; known: {', '.join(OPTION_FIELDS)}")
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                continue
            if key == "profile":
                if not isinstance(value, str) or value not in profiles:
                    raise OptionError(f"unknown profile {short(value)}; known profiles: "
                                      f"{', '.join(profiles) or 'none'}")
                changes["profile"] = value
            elif key == "game":
                changes["game"] = parse_game(value)
            elif key == "resolution":
                changes["width"], changes["height"] = parse_resolution(value)
            elif key == "fps":
                changes["fps"] = parse_fps(value)
            elif key == "codec":
                changes["codec"] = parse_codec(value)
            elif key == "bitrate":
                changes["bitrate"] = parse_bitrate(value)
            elif key == "stack":
                changes["stack"] = parse_choice("stack", value, STACKS)
            elif key == "cc":
                changes["cc"] = parse_choice("cc", value, sorted(CONTROLLERS))
            elif key == "ladder":
                changes["ladder"] = parse_switch("ladder", value)
            elif key == "fec":
                changes["fec"] = parse_choice("fec", value, FEC_MODES)
            elif key == "seed":
                changes["seed"] = parse_int("seed", value, 0, 2**32 - 1)
        return replace(self, **changes)


@dataclass(frozen=True)
class OfferRequest:
    """An ``/offer`` body, parsed and checked (all but the SDP's content)."""

    sdp: str
    options: SessionOptions
    role: str
    # A session's share token: join it instead of starting a new one.
    join: str | None


def parse_offer(body: object, defaults: SessionOptions, profiles: Collection[str]) -> OfferRequest:
    """The offer in a decoded JSON ``body``; OptionError naming the first bad field.

    ``defaults`` are the server's session options, ``profiles`` the network
    profile names a client may ask for.
    """
    if not isinstance(body, dict):
        raise OptionError("offer body: expected a JSON object with 'sdp' and 'type'")
    if body.get("type") != "offer":
        raise OptionError(f"type: expected 'offer', got {short(body.get('type'))}")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OptionError("sdp: expected an SDP string starting with 'v=0'")
    options = defaults.updated(
        {k: v for k, v in body.items() if k not in OFFER_FIELDS}, profiles=profiles
    )
    role = body.get("role", "player")
    if role not in ROLES:
        raise OptionError(f"role: expected 'player' or 'spectator', got {short(role)}")
    join = body.get("join")
    if join is not None and not isinstance(join, str):
        raise OptionError(f"join: expected a session's share token (a string), got {short(join)}")
    return OfferRequest(sdp=sdp, options=options, role=role, join=join)


def parse_choice(field: str, value: object, known: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in known:
        raise OptionError(f"unknown {field} {short(value)}; known {field}s: {', '.join(known)}")
    return value


def parse_switch(field: str, value: object) -> bool:
    """``"on"``/``"off"`` (flags) or a JSON ``true``/``false``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in SWITCH:
        return SWITCH[value]
    raise OptionError(f"{field}: expected on or off, got {short(value)}")


def parse_game(value: object) -> str:
    return parse_choice("game", value, available_games())


def parse_codec(value: object) -> str:
    if not isinstance(value, str) or value not in CODECS:
        raise OptionError(unknown_codec_message(str(value)[:40]))
    return value


def parse_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise OptionError(f"{field}: expected an integer {low}..{high}, got {short(value)}")
    try:
        number = int(value)  # type: ignore[call-overload]
        assert isinstance(number, int)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        message = f"{field}: expected an integer {low}..{high}, got {short(value)}"
        raise OptionError(message) from None
    if isinstance(value, float) and value != number:
        raise OptionError(f"{field}: expected an integer {low}..{high}, got {short(value)}")
    if not low <= number <= high:
        raise OptionError(f"{field}: expected an integer {low}..{high}, got {short(value)}")
    return number


def parse_fps(value: object) -> int:
    return parse_int("fps", value, 1, 240)


def parse_resolution(value: object) -> tuple[int, int]:
    match = _RESOLUTION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise OptionError(
            f"resolution: expected WIDTHxHEIGHT like 1280x720, got {short(value)}"
        )
    width, height = int(match[1]), int(match[2])
    if not (320 <= width <= MAX_WIDTH and 180 <= height <= MAX_HEIGHT) or width % 2 or height % 2:
        raise OptionError(
            f"resolution: expected an even width 320..{MAX_WIDTH} and an even "
            f"height 180..{MAX_HEIGHT}, got {short(value)}"
        )
    return width, height


def parse_bitrate(value: object) -> int:
    """Bits per second from ``8000000``, ``"8M"``, ``"800k"`` or ``"2.5M"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _BITRATE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise OptionError(
                f"bitrate: expected bits/s like 8M, 800k or 8000000, got {short(value)}"
            )
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
        amount = float(match[1]) * scale
        if not amount < 1e12:  # also inf from a very long digit string
            raise OptionError(f"bitrate: expected 100k..200M bits/s, got {short(value)}")
        number = int(amount)
    if not 100_000 <= number <= 200_000_000:
        raise OptionError(f"bitrate: expected 100k..200M bits/s, got {short(value)}")
    return number
