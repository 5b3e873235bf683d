"""Congestion controllers behind one interface, and their registry.

A controller is sans-I/O: the sender hands it feedback (``on_feedback`` with
``PacketResult``s from the sent-packet history, or ``on_remb``) and the time,
and reads ``target`` (bits/s) for the encoder and pacer. ``state`` gives what
the metrics and the benchmark show.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .history import PacketResult
from .throughput import QueueingDelay


@dataclass(frozen=True)
class CcState:
    """A controller's view at one moment (bits/s, seconds)."""

    target: float  # what the encoder is asked for
    estimate: float  # the controller's estimate of the link (may exceed the encoder ceiling)
    queueing_delay: float  # queueing delay estimated from feedback
    loss: float  # loss fraction of the last loss update
    usage: str  # the delay detector's verdict ("normal", "overusing", "underusing", "n/a")
    # The queue a packet sent at the time of this state would meet (cc/queue_model.py).
    predicted_queueing: float = 0.0
    # The queue the latest feedback showed, above its usual level (jitter alone).
    standing_queueing: float = 0.0


class CongestionController(abc.ABC):
    """Turns feedback into a target bitrate between ``min_rate`` and ``max_rate``."""

    name: ClassVar[str]

    def __init__(self, *, initial: float, min_rate: float, max_rate: float) -> None:
        if not 0 < min_rate <= initial <= max_rate:
            raise ValueError(
                f"congestion control rates {min_rate}/{initial}/{max_rate}: "
                "expected 0 < min <= initial <= max"
            )
        self.initial = initial
        self.min_rate = min_rate
        self.max_rate = max_rate

    @abc.abstractmethod
    def on_feedback(self, results: list[PacketResult], now: float) -> None:
        """Transport-cc feedback, resolved against the sent-packet history."""

    def on_remb(self, bitrate: float, now: float) -> None:  # noqa: B027 - optional hook
        """A receiver's REMB estimate (bits/s); ignored unless the controller uses it."""

    def on_rtt(self, rtt: float, now: float) -> None:  # noqa: B027 - optional hook
        """A round-trip time measured from RTCP reports (seconds)."""

    def on_sent(self, size: int, now: float) -> None:  # noqa: B027 - optional hook
        """A packet of ``size`` bytes (on the wire) left at ``now``."""

    def queue_ahead(self, now: float) -> float:
        """Seconds of bottleneck queue a packet sent at ``now`` would meet (0: unknown)."""
        return 0.0

    @property
    def standing_queue(self) -> float:
        """Seconds of queue the latest feedback showed above its usual level (0: unknown)."""
        return 0.0

    @property
    @abc.abstractmethod
    def target(self) -> float:
        """The bitrate to send at now (bits/s)."""

    @abc.abstractmethod
    def state(self) -> CcState:
        """The controller's current view, for metrics and records."""


class FixedController(CongestionController):
    """No adaptation: the target stays at the configured bitrate (``--cc none``)."""

    name = "none"

    def __init__(self, *, initial: float, min_rate: float, max_rate: float) -> None:
        super().__init__(initial=initial, min_rate=min_rate, max_rate=max_rate)
        self.queueing = QueueingDelay()  # measured all the same, for comparison

    def on_feedback(self, results: list[PacketResult], now: float) -> None:
        self.queueing.update(results)

    @property
    def target(self) -> float:
        return self.initial

    def state(self) -> CcState:
        return CcState(self.initial, self.initial, self.queueing.delay, 0.0, "n/a")


ControllerFactory = Callable[..., CongestionController]
CONTROLLERS: dict[str, ControllerFactory] = {"none": FixedController}


def register_controller(name: str, factory: ControllerFactory) -> None:
    CONTROLLERS[name] = factory


def create_controller(
    name: str, *, initial: float, min_rate: float, max_rate: float
) -> CongestionController:
    """Create a controller by registry name; unknown names list the known ones."""
    try:
        factory = CONTROLLERS[name]
    except KeyError:
        known = ", ".join(sorted(CONTROLLERS))
        raise ValueError(
            f"unknown congestion controller {name!r}: expected one of {known}"
        ) from None
    return factory(initial=initial, min_rate=min_rate, max_rate=max_rate)
