"""A viewer's congestion control: the controller, its transport step, what the session reads.

The tuned stack (:mod:`cloudarcade.stacks`) gives each viewer one; the viewer
puts its :class:`~cloudarcade.cc.steps.SendSideCongestion` step on its DTLS
transport (a :class:`~cloudarcade.rtc.seam.TransportSeam`):
every RTP packet gets a transport-wide sequence number (and, with a real
controller, is paced), and the client's transport-cc feedback or REMB moves the
controller's target. The session turns the targets of all its viewers into
the encoder's bitrate and skips frames at the source while a viewer's sender
is backed up (:meth:`ViewerCongestion.congested`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from cloudarcade.cc import CcState, Pacer, create_controller
from cloudarcade.cc.steps import SendSideCongestion
from cloudarcade.encoder.base import MIN_BITRATE
from cloudarcade.rtc.extensions import TRANSPORT_CC
from cloudarcade.server.options import SessionOptions

logger = logging.getLogger(__name__)

# The lowest target: a twentieth of the configured bitrate (400 kbit/s at 8M);
# below that a 720p picture is mush and a lower resolution would do better.
MIN_FRACTION = 20
START_FRACTION = 4
# Skip frames while a packet sent now would meet more queue than this (the
# controller's prediction: the latest feedback carried forward by what was sent
# since, cc/queue_model.py). A frame sent at the target leaves the prediction
# near its own serialisation time (under a frame interval) and back at zero
# by the next frame; a capacity drop pushes it past this within a frame.
SKIP_QUEUEING_S = 0.025
# Or while the latest feedback shows this much standing queue above its usual
# level: the prediction trusts the trains' capacity, which a slow link that
# keeps the queue standing (LTE's 4 Mbit/s spells) can overstate.
SKIP_STANDING_S = 0.050
MAX_SKIPPED = 5  # frames in a row, for the session; the sixth is sent whatever the estimate
# A viewer not heard of for this long is stalled (a suspended tab, a dead link),
# not congested: while another viewer is still heard, it no longer holds the
# session's frames back. Its silence reads as an ever-growing queue, so it kept
# every viewer at one frame in six until its liveness timeout (10 s) closed it.
STALLED_S = 1.0


class SkipRun:
    """The session's cap on frames skipped in a row (sans-I/O).

    A session encodes once for all its viewers and skips a frame while any of
    them is congested, so the cap counts the session's skips, not each
    viewer's: counted per viewer behind ``any()``, two viewers that stayed
    congested let one frame in 36 through, four one in 1296.
    """

    def __init__(self, limit: int = MAX_SKIPPED) -> None:
        if limit < 0:
            raise ValueError(f"skip limit {limit}: expected >= 0")
        self.limit = limit
        self._run = 0

    def allow(self, congested: bool) -> bool:
        """Whether to skip this frame, given whether some viewer is congested."""
        if not congested or self._run >= self.limit:
            self._run = 0
            return False  # never freeze the picture for long
        self._run += 1
        return True


class Congestion(Protocol):
    def congested(self, now: float) -> bool: ...


def link_full(viewers: Iterable[tuple[float, Congestion]], now: float) -> bool:
    """Whether to hold the session's next frame back: some viewer is congested.

    ``viewers``: (when the viewer was last heard of, its congestion control).
    Viewers not heard of for :data:`STALLED_S` count only when no viewer is
    heard: skipping frames for a stalled viewer does not help it, and would
    starve everyone else.
    """
    everyone = list(viewers)
    heard = [c for last, c in everyone if now - last < STALLED_S]
    deciding = heard if heard else [c for _, c in everyone]
    return any(c.congested(now) for c in deciding)


class ViewerCongestion:
    """Congestion control for one viewer's peer connection."""

    def __init__(self, options: SessionOptions, on_update: Callable[[CcState], None]) -> None:
        self.name = options.cc
        self.frame_interval = 1 / options.fps
        min_rate = max(MIN_BITRATE, options.bitrate // MIN_FRACTION)
        # An adapting controller starts low, as libwebrtc does, and climbs within
        # a second on an open link (the packet-train probe): starting at the
        # ceiling on a thin link floods its queue before the first feedback.
        initial = options.bitrate if options.cc == "none" else max(
            min_rate, options.bitrate // START_FRACTION
        )
        self.controller = create_controller(
            options.cc, initial=initial, min_rate=min_rate, max_rate=options.bitrate
        )
        self._on_update = on_update
        self.step: SendSideCongestion | None = None

    @property
    def adapts(self) -> bool:
        """False for ``none``: fixed bitrate, no pacing, as the stack was before."""
        return self.name != "none"

    def create_step(self, extension_ids: Mapping[str, int]) -> SendSideCongestion:
        """The transport step, for the ids negotiated (after the answer is set)."""
        extension_id = extension_ids.get(TRANSPORT_CC)
        if extension_id is None:
            logger.info("client did not negotiate transport-cc: only REMB can steer the bitrate")
        pacer = Pacer(self.controller.target) if self.adapts else None
        self.step = SendSideCongestion(
            self.controller, extension_id=extension_id, on_update=self._on_update, pacer=pacer
        )
        self._on_update(self.controller.state())
        return self.step

    def congested(self, now: float) -> bool:
        """Skip the next frame: the pacer is booked more than a frame ahead, or a
        packet sent now would meet a standing queue on the path (a capacity drop
        the rate has not caught up with yet: not sending drains it at the link's
        full rate)."""
        step = self.step
        if step is None or not self.adapts:
            return False
        return (
            step.backlog(now) > self.frame_interval
            or self.controller.queue_ahead(now) > SKIP_QUEUEING_S
            or self.controller.standing_queue > SKIP_STANDING_S
        )

    @property
    def last_frame_sent(self) -> float | None:
        """When the last packet of the latest frame left (the transport step saw it)."""
        return self.step.last_frame_sent if self.step is not None else None

    def state(self) -> CcState:
        return self.controller.state()
