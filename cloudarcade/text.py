"""Text helpers for error messages."""

from __future__ import annotations


def short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: bad input is quoted, never flooded."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
