"""The desktop client's stats overlay: figures sampled from the client, drawn on the window.

:class:`StatsSampler` is sans-I/O: it takes cumulative counters and ``now`` and
returns the frame rates over the last sample interval, so it is tested with
made-up numbers. :func:`render_panel` and :func:`draw_overlay` are the pygame part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pygame

PANEL_ALPHA = 190
TEXT = (235, 235, 235)
PANEL = (0, 0, 0)
STATS_WINDOW = 120  # frames the overlay's medians look back over


@dataclass(frozen=True)
class Counters:
    """Cumulative figures read from the client at one instant."""

    frames_received: int | None  # complete frames handed to the decoder; None on the stock stack
    frames_decoded: int
    packets: int | None
    nacks: int | None
    plis: int | None
    frames_skipped: int | None


@dataclass(frozen=True)
class OverlayStats:
    """What the overlay shows. Times are milliseconds; None means not measured (yet)."""

    fps_received: float | None
    fps_decoded: float
    frame_latency_p50: float | None  # server render end -> decoded, from the joined records
    decode_p50: float | None
    display_p50: float | None  # decoded -> flip returned (the window's photon)
    input_to_photon_p50: float | None
    packets: int | None
    nacks: int | None
    plis: int | None
    frames_skipped: int | None
    resolution: tuple[int, int] | None
    codec: str | None


def p50_ms(values: Sequence[float]) -> float | None:
    """Median of ``values`` (seconds) in milliseconds, None when empty."""
    if not values:
        return None
    return float(np.median(np.asarray(values))) * 1000.0


class StatsSampler:
    """Turns cumulative counters into per-second rates between two samples."""

    def __init__(self) -> None:
        self._last: tuple[float, Counters] | None = None

    def rates(self, now: float, counters: Counters) -> tuple[float | None, float]:
        """(received fps, decoded fps) since the previous call; zeros on the first."""
        last, self._last = self._last, (now, counters)
        if last is None or now <= last[0]:
            return (0.0 if counters.frames_received is not None else None), 0.0
        then, before = last
        dt = now - then
        received = None
        if counters.frames_received is not None and before.frames_received is not None:
            received = (counters.frames_received - before.frames_received) / dt
        return received, (counters.frames_decoded - before.frames_decoded) / dt


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_lines(stats: OverlayStats) -> list[str]:
    """The overlay's text, one string per line."""
    resolution = f"{stats.resolution[0]}x{stats.resolution[1]}" if stats.resolution else "-"
    return [
        f"fps received {_fps(stats.fps_received)}   decoded {_fps(stats.fps_decoded)}",
        f"frame latency p50 {_ms(stats.frame_latency_p50)}  (server render -> decoded)",
        f"decode {_ms(stats.decode_p50)}   display {_ms(stats.display_p50)}",
        f"input -> photon p50 {_ms(stats.input_to_photon_p50)}",
        f"packets {_count(stats.packets)}   NACKs {_count(stats.nacks)}   "
        f"PLIs {_count(stats.plis)}   skipped {_count(stats.frames_skipped)}",
        f"{resolution}  {stats.codec or '-'}   (F1 hides, hold Esc to quit)",
    ]


def render_panel(lines: Sequence[str], font: pygame.font.Font) -> pygame.Surface:
    """A translucent panel with ``lines``; rendered once per sample, blitted every refresh."""
    rendered = [font.render(line, True, TEXT) for line in lines]
    pad = 6
    width = max(s.get_width() for s in rendered) + 2 * pad
    step = font.get_linesize()
    panel = pygame.Surface((width, step * len(rendered) + 2 * pad), pygame.SRCALPHA)
    panel.fill((*PANEL, PANEL_ALPHA))
    for i, surface in enumerate(rendered):
        panel.blit(surface, (pad, pad + i * step))
    return panel


def draw_overlay(target: pygame.Surface, panel: pygame.Surface) -> None:
    """Blit ``panel`` in the top-left corner of ``target``."""
    target.blit(panel, (8, 8))
