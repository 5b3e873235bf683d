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
import time
from collections.abc import Callable, Mapping

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
# Skip frames while the feedback shows more queueing than this: well above what
# jitter alone shows on the shipped profiles (5g-congested: 8 ms, correlated).
SKIP_QUEUEING_S = 0.100
FRESH_S = 0.150  # three feedback intervals
MAX_SKIPPED = 5  # in a row; the sixth frame is sent whatever the estimate


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
        self._on_update_callback = on_update
        self.step: SendSideCongestion | None = None
        self._last_feedback = -1e9
        self._skipped = 0

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
        """Skip the next frame: the pacer is booked more than a frame ahead, or the
        feedback shows a standing queue on the path (a capacity drop the rate has
        not caught up with yet: not sending drains it at the link's full rate)."""
        step = self.step
        if step is None or not self.adapts:
            return False
        skip = step.backlog(now) > self.frame_interval or (
            # Only on fresh feedback: with nothing sent, the last figure never changes.
            now - self._last_feedback < FRESH_S
            and self.controller.state().queueing_delay > SKIP_QUEUEING_S
        )
        self._skipped = self._skipped + 1 if skip else 0
        if self._skipped > MAX_SKIPPED:
            self._skipped = 0
            return False  # never freeze the picture for long
        return skip

    @property
    def last_frame_sent(self) -> float | None:
        """When the last packet of the latest frame left (the transport step saw it)."""
        return self.step.last_frame_sent if self.step is not None else None

    def _on_update(self, state: CcState) -> None:
        self._last_feedback = time.monotonic()
        self._on_update_callback(state)

    def state(self) -> CcState:
        return self.controller.state()
