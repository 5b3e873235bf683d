"""Server → client: one record per frame on the ``frames`` channel.

Validated like the input messages (:mod:`cloudarcade.protocol.fields`); the
wire format is in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from cloudarcade.protocol.fields import (
    ProtocolError,
    bool_field,
    decode,
    float_field,
    int_field,
    show,
)
from cloudarcade.protocol.inputs import SEQ_MAX

FRAMES_CHANNEL: Final = "frames"
"""Server → client, unordered but reliable: one :class:`FrameTiming` record per frame sent."""


@dataclass
class FrameTiming:
    """Server-side timestamps (``time.monotonic()`` seconds) of one frame.

    The field names are the stage timestamps of :mod:`cloudarcade.stages`.
    ``input_seq`` is the last input the game had applied when the frame was
    rendered; ``input_recv`` is when that input reached the server, on every
    frame that shows it (the frame of the tick that applied it may be dropped
    before it is sent). The server fills the record in
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
    # The ladder's rung the frame was encoded at (cloudarcade.server.ladder):
    # its size and frame rate; None from a server that does not say.
    width: int | None = None
    height: int | None = None
    fps: int | None = None

    def copy(self) -> FrameTiming:
        return replace(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=False)

    @classmethod
    def parse(cls, data: str | bytes) -> FrameTiming:
        """Read and validate one record; raises :class:`ProtocolError` naming the bad field.

        Fields the record does not define are ignored, as in input messages.
        """
        obj = decode(data)
        if not isinstance(obj, dict):
            raise ProtocolError("malformed", f"frame record: expected a JSON object, "
                                             f"got {show(obj)}")
        fields: dict[str, Any] = {
            "frame_id": int_field(obj, "frame_id", 0, 2**53),
            "input_seq": int_field(obj, "input_seq", 0, SEQ_MAX),
            "size_bytes": int_field(obj, "size_bytes", 0, 2**53),
            "keyframe": bool_field(obj, "keyframe"),
        }
        for name in _RECORD_STAMPS:
            fields[name] = float_field(obj, name, 0.0, math.inf)
        for name in _RECORD_OPTIONAL_STAMPS:
            if obj.get(name) is not None:
                fields[name] = float_field(obj, name, 0.0, math.inf)
        for name, high in (("cc_target", 1e12), ("cc_queueing", 3600.0)):
            if obj.get(name) is not None:
                fields[name] = float_field(obj, name, 0.0, high)
        for name, top in (("width", 16384), ("height", 16384), ("fps", 1000)):
            if obj.get(name) is not None:
                fields[name] = int_field(obj, name, 1, top)
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
