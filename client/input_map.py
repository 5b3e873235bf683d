"""Physical keys and gamepads in the input protocol's terms (pygame side).

Keys become KeyboardEvent.code names (``KeyW``, ``ArrowUp``, ...) as
docs/protocol.md asks; gamepad readings become pad states with a dead zone, and
:class:`PadTracker` keeps only the changes worth sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pygame

from cloudarcade import protocol

AXIS_DEADZONE: Final = 0.15
PAD_DPAD: Final = 12  # standard mapping: buttons 12-15 are d-pad up, down, left, right

# --- keys --------------------------------------------------------------------------

# (KeyboardEvent.code, pygame K_ suffix, pygame KSCAN_ suffix)
_NAMED_KEYS: Final = (
    ("ArrowUp", "UP", "UP"), ("ArrowDown", "DOWN", "DOWN"),
    ("ArrowLeft", "LEFT", "LEFT"), ("ArrowRight", "RIGHT", "RIGHT"),
    ("Space", "SPACE", "SPACE"), ("Enter", "RETURN", "RETURN"), ("Escape", "ESCAPE", "ESCAPE"),
    ("Tab", "TAB", "TAB"), ("Backspace", "BACKSPACE", "BACKSPACE"),
    ("ShiftLeft", "LSHIFT", "LSHIFT"), ("ShiftRight", "RSHIFT", "RSHIFT"),
    ("ControlLeft", "LCTRL", "LCTRL"), ("ControlRight", "RCTRL", "RCTRL"),
    ("AltLeft", "LALT", "LALT"), ("AltRight", "RALT", "RALT"),
    ("MetaLeft", "LGUI", "LGUI"), ("MetaRight", "RGUI", "RGUI"),
    ("CapsLock", "CAPSLOCK", "CAPSLOCK"), ("Minus", "MINUS", "MINUS"),
    ("Equal", "EQUALS", "EQUALS"), ("BracketLeft", "LEFTBRACKET", "LEFTBRACKET"),
    ("BracketRight", "RIGHTBRACKET", "RIGHTBRACKET"), ("Backslash", "BACKSLASH", "BACKSLASH"),
    ("Semicolon", "SEMICOLON", "SEMICOLON"), ("Quote", "QUOTE", "APOSTROPHE"),
    ("Backquote", "BACKQUOTE", "GRAVE"), ("Comma", "COMMA", "COMMA"),
    ("Period", "PERIOD", "PERIOD"), ("Slash", "SLASH", "SLASH"),
    ("Insert", "INSERT", "INSERT"), ("Delete", "DELETE", "DELETE"), ("Home", "HOME", "HOME"),
    ("End", "END", "END"), ("PageUp", "PAGEUP", "PAGEUP"), ("PageDown", "PAGEDOWN", "PAGEDOWN"),
    ("NumpadEnter", "KP_ENTER", "KP_ENTER"), ("NumpadAdd", "KP_PLUS", "KP_PLUS"),
    ("NumpadSubtract", "KP_MINUS", "KP_MINUS"), ("NumpadMultiply", "KP_MULTIPLY", "KP_MULTIPLY"),
    ("NumpadDivide", "KP_DIVIDE", "KP_DIVIDE"), ("NumpadDecimal", "KP_PERIOD", "KP_PERIOD"),
)


def _key_table() -> list[tuple[str, str, str]]:
    table = [(f"Key{c}", c.lower(), c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    table += [(f"Digit{d}", d, d) for d in "0123456789"]
    table += [(f"Numpad{d}", f"KP_{d}", f"KP_{d}") for d in "0123456789"]
    table += [(f"F{n}", f"F{n}", f"F{n}") for n in range(1, 13)]
    return table + list(_NAMED_KEYS)


KEY_CODES: Final[dict[int, str]] = {getattr(pygame, f"K_{k}"): c for c, k, _ in _key_table()}
SCANCODE_CODES: Final[dict[int, str]] = {
    getattr(pygame, f"KSCAN_{s}"): c for c, _, s in _key_table()
}


def key_code(key: int, scancode: int | None = None) -> str | None:
    """The KeyboardEvent.code name of a pygame key, None for keys we don't forward.

    KeyboardEvent.code names a physical key, so the SDL scancode wins when the
    event has a known one (on AZERTY the key left of Z-row is still ``KeyQ``);
    the layout-dependent key is the fallback (synthetic events carry none).
    """
    if scancode is not None and scancode in SCANCODE_CODES:
        return SCANCODE_CODES[scancode]
    return KEY_CODES.get(key)


# --- pads --------------------------------------------------------------------------


@dataclass(frozen=True)
class PadState:
    """One pad as the protocol sends it: buttons 0..1, axes -1..1 after the dead zone."""

    buttons: tuple[float, ...]
    axes: tuple[float, ...]


NEUTRAL_PAD: Final = PadState((), ())


def pad_state(
    buttons: list[bool], axes: list[float], hat: tuple[int, int] | None,
    deadzone: float = AXIS_DEADZONE,
) -> PadState:
    """A raw joystick reading in the protocol's shape.

    Buttons keep the device's own order (pygame's joystick API knows no
    standard mapping), except that the first hat becomes the d-pad, 12-15.
    Axes inside the dead zone read 0 and the rest are rounded, so stick noise
    sends nothing.
    """
    values = [1.0 if b else 0.0 for b in buttons[: protocol.MAX_PAD_BUTTONS]]
    if hat is not None:
        values += [0.0] * max(0, PAD_DPAD + 4 - len(values))
        x, y = hat  # pygame hats: y is +1 for up
        values[PAD_DPAD:PAD_DPAD + 4] = [float(y > 0), float(y < 0), float(x < 0), float(x > 0)]
    clean = tuple(
        0.0 if abs(a) < deadzone else round(max(-1.0, min(1.0, a)), 2)
        for a in axes[: protocol.MAX_PAD_AXES]
    )
    return PadState(tuple(values), clean)


class PadTracker:
    """What the server last heard from each pad, so only changes are sent."""

    def __init__(self) -> None:
        self._sent: dict[int, PadState] = {}

    def update(self, index: int, state: PadState) -> PadState | None:
        """``state`` if it differs from what was sent for ``index``, else None."""
        if self._sent.get(index, NEUTRAL_PAD) == state:
            return None
        self._sent[index] = state
        return state

    def forget(self, index: int) -> PadState | None:
        """A pad went away: a neutral state to send if it was holding anything."""
        last = self._sent.pop(index, NEUTRAL_PAD)
        if any(last.buttons) or any(last.axes):
            return PadState(tuple(0.0 for _ in last.buttons), tuple(0.0 for _ in last.axes))
        return None
