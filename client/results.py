"""What a client measured: frames joined with the server's records, probes, a summary."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudarcade.protocol import FrameTiming

# The summary keeps the most recent this many frames and probes.
_KEEP = 100_000


@dataclass
class FrameResult:
    """A decoded frame joined with the server's record of it (when that arrived)."""

    frame_id: int
    input_seq: int
    client: dict[str, float]
    server: FrameTiming | None = None
    luma: npt.NDArray[np.uint8] | None = None  # only for sampled frames

    def stamps(self) -> dict[str, float]:
        out = self.server.stamps() if self.server is not None else {}
        out.update(self.client)
        return out


@dataclass
class ProbeResult:
    """One input and the first decoded frame that showed its effect."""

    seq: int
    input_sent: float
    frame: FrameResult | None = None

    @property
    def input_to_photon(self) -> float | None:
        if self.frame is None:
            return None
        return self.frame.client["photon"] - self.input_sent


@dataclass
class ClientSummary:
    frames_decoded: int = 0
    first_frame: float | None = None
    last_frame: float | None = None
    # Bounded: a long play session must not grow without limit.
    frame_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_KEEP))
    probes: deque[ProbeResult] = field(default_factory=lambda: deque(maxlen=_KEEP))
    frame_ids: deque[int] = field(default_factory=lambda: deque(maxlen=_KEEP))
    undecodable_codes: int = 0
    receiver: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        duration = (
            (self.last_frame - self.first_frame)
            if self.first_frame is not None and self.last_frame is not None else 0.0
        )
        fps = (self.frames_decoded - 1) / duration if duration > 0 else 0.0
        reflected = [p for p in self.probes if p.frame is not None]
        i2p = [p.input_to_photon for p in reflected if p.input_to_photon is not None]
        return {
            "frames_decoded": self.frames_decoded,
            "fps": round(fps, 2),
            "frame_latency_ms": _percentiles_ms(self.frame_latencies),
            "inputs_sent": len(self.probes),
            "inputs_reflected": len(reflected),
            "input_to_photon_ms": _percentiles_ms(i2p),
            "frame_code_unreadable": self.undecodable_codes,
            "receiver": self.receiver,
        }


def _percentiles_ms(values: Iterable[float]) -> dict[str, float | None]:
    values = list(values)
    if not values:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "n": len(values)}
