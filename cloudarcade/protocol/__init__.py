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

from cloudarcade.protocol.fields import MAX_MESSAGE_BYTES, REJECT_REASONS, ProtocolError
from cloudarcade.protocol.frames import FRAMES_CHANNEL, FrameTiming
from cloudarcade.protocol.inputs import (
    CHANNEL_EVENTS,
    CHANNEL_STATE,
    MAX_DELTA,
    MAX_PAD_AXES,
    MAX_PAD_BUTTONS,
    MAX_PAD_INDEX,
    MAX_POINTER_BUTTONS,
    PROTOCOL_VERSION,
    SEQ_MAX,
    STATS_FIELDS,
    InputEvent,
    KeyEvent,
    Message,
    PadEvent,
    PointerEvent,
    StatsReport,
    channel_for,
    encode,
    parse,
    to_dict,
)
from cloudarcade.protocol.redundancy import (
    DISCARD_REASONS,
    KEY_COPY_DELAYS,
    KeyDedupe,
    Verdict,
)

__all__ = [
    "CHANNEL_EVENTS", "CHANNEL_STATE", "DISCARD_REASONS", "FRAMES_CHANNEL", "KEY_COPY_DELAYS",
    "MAX_DELTA", "MAX_MESSAGE_BYTES", "MAX_PAD_AXES", "MAX_PAD_BUTTONS", "MAX_PAD_INDEX",
    "MAX_POINTER_BUTTONS", "PROTOCOL_VERSION", "REJECT_REASONS", "SEQ_MAX", "STATS_FIELDS",
    "FrameTiming", "InputEvent", "KeyDedupe", "KeyEvent", "Message", "PadEvent", "PointerEvent",
    "ProtocolError", "StatsReport", "Verdict", "channel_for", "encode", "parse", "to_dict",
]
