"""The server's record of one frame: when each stage of its path ended.

Sent to the client on the ``frames`` data channel as JSON, keyed by frame id,
so that a client (or the bench) can join server stages with its own; the field
names are the timestamps of :mod:`cloudarcade.stages`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

FRAMES_CHANNEL = "frames"


@dataclass
class FrameTiming:
    """Server-side timestamps (``time.monotonic()`` seconds) of one frame.

    ``input_seq`` is the last input the game had applied when the frame was
    rendered; ``input_recv`` is when that input reached the server, set only
    on the frame of the tick that applied it.
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

    def copy(self) -> FrameTiming:
        return replace(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, data: str | bytes) -> FrameTiming:
        """Read a record sent by :meth:`to_json`; raises ``ValueError``."""
        try:
            raw = json.loads(data)
            return cls(**raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"bad frame record: {exc}") from None

    def stamps(self) -> dict[str, float]:
        """The timestamps that are set, by stage-timestamp name."""
        out: dict[str, float] = {}
        for key, value in asdict(self).items():
            if key in ("frame_id", "input_seq", "size_bytes", "keyframe") or value is None:
                continue
            out[key] = float(value)
        return out
