"""Congestion control: transport-cc feedback, GCC, a pacer; sans-I/O, driven by ``now``.

Receiver: ``FeedbackGenerator`` turns arrivals into ``TransportFeedback``.
Sender: ``SentPacketHistory`` numbers packets and resolves feedback into
``PacketResult``s; a controller from ``create_controller(name)`` ("gcc",
"none") turns those into a target bitrate; ``Pacer`` sends at a little above it.
See docs/congestion.md.
"""

from . import gcc as _gcc  # noqa: F401 - registers "gcc"
from .base import (
    CONTROLLERS,
    CcState,
    CongestionController,
    FixedController,
    create_controller,
    register_controller,
)
from .feedback import FeedbackGenerator
from .history import PacketResult, SentPacketHistory
from .pacer import Pacer
from .remb import Remb
from .twcc import TRANSPORT_CC_URI, TransportFeedback

__all__ = [
    "CONTROLLERS",
    "TRANSPORT_CC_URI",
    "CcState",
    "CongestionController",
    "FeedbackGenerator",
    "FixedController",
    "Pacer",
    "PacketResult",
    "Remb",
    "SentPacketHistory",
    "TransportFeedback",
    "create_controller",
    "register_controller",
]
