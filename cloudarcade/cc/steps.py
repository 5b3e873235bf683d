"""Congestion control as steps on the aiortc seams (:mod:`cloudarcade.rtc.seam`).

- :class:`SendSideCongestion` (a ``TransportStep`` on the server): stamps each
  outgoing RTP packet with the next transport-wide sequence number, paces it,
  records when it left, reads transport-cc feedback and REMB from the raw
  RTCP, and hands the controller's new state to ``on_update``. The transport-cc
  packets are taken out before aiortc parses the rest: it would read them as
  NACKs (and resend packets nobody lost) or, when padded, reject the whole
  compound packet.
- :class:`TransportFeedbackStep` (a ``ReceiveStep`` on the client): records
  each packet's transport-wide sequence number and arrival, and sends
  transport-cc feedback every 25 ms.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Callable, Iterable

from cloudarcade.rtc.packet import Feedback, OutgoingRtp
from cloudarcade.rtc.seam import ReceiveStep, RtpIn, TransportStep

from .base import CcState, CongestionController
from .feedback import FeedbackGenerator
from .history import PacketResult, SentPacketHistory
from .pacer import Pacer
from .rtcp import congestion_feedback
from .twcc import TransportFeedback

logger = logging.getLogger(__name__)

# IP + UDP + SRTP tag over the serialized RTP packet: what the link carries.
_OVERHEAD = 20 + 8 + 10


class SendSideCongestion(TransportStep):
    """Transport-wide sequence numbers out, feedback in, ``on_update(state)`` after each."""

    def __init__(
        self,
        controller: CongestionController,
        *,
        extension_id: int | None,
        on_update: Callable[[CcState], None],
        pacer: Pacer | None = None,
    ) -> None:
        self.controller = controller
        self.extension_id = extension_id
        self.history = SentPacketHistory()
        self.pacer = pacer
        self._on_update = on_update
        # Others that read the same results (the FEC policy): (results, now).
        self.on_results: list[Callable[[list[PacketResult], float], None]] = []
        self.feedback_packets = 0
        self.feedback_errors = 0
        # When the last packet of a frame (the RTP marker) leaves: the frame's true
        # send time, which the track only learns later, when aiortc asks for more.
        self.last_frame_sent: float | None = None

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        if self.extension_id is not None:
            seq = self.history.allocate()
            packet.set_extension(self.extension_id, struct.pack("!H", seq))
            packet.transport_sequence_number = seq
        depart = None
        if self.pacer is not None:
            # The header grows by the extension; close enough for pacing.
            depart = self.pacer.schedule(packet.payload_size + 12 + 8 + _OVERHEAD, now)
        if packet.marker:
            # Just before it goes: a receiver in another process may see it before
            # the send returns, so a stamp taken after would run late.
            self.last_frame_sent = now if depart is None else max(depart, now)
        return depart

    def sent(self, packet: OutgoingRtp, size: int, now: float) -> None:
        seq = packet.transport_sequence_number
        if seq is not None:
            self.history.record(seq, size + _OVERHEAD, now)
            self.controller.on_sent(size + _OVERHEAD, now)

    def rtcp_received(self, data: bytes, now: float) -> bytes | None:
        try:
            feedback, rembs, rest = congestion_feedback(data)
        except ValueError as exc:
            self.feedback_errors += 1
            logger.debug("RTCP not parsed for congestion control: %s", exc)
            return None
        if not feedback and not rembs:
            return None
        for packet in feedback:
            self.feedback_packets += 1
            results = self.history.on_feedback(packet)
            self.controller.on_feedback(results, now)
            for listener in self.on_results:
                listener(results, now)
        for remb in rembs:
            self.controller.on_remb(remb.bitrate, now)
        state = self.controller.state()
        if self.pacer is not None:
            self.pacer.rate = state.target
        self._on_update(state)
        return rest

    def backlog(self, now: float) -> float:
        """Seconds the pacer is booked ahead of ``now``."""
        return 0.0 if self.pacer is None else self.pacer.backlog(now)


@dataclasses.dataclass(frozen=True)
class _TwccFeedback:
    feedback: TransportFeedback

    def to_rtcp(self, sender_ssrc: int) -> bytes:
        return bytes(dataclasses.replace(self.feedback, sender_ssrc=sender_ssrc))


class TransportFeedbackStep(ReceiveStep):
    """The receiver's transport-cc: arrivals in, feedback out every ``interval``."""

    def __init__(self, generator: FeedbackGenerator | None = None) -> None:
        self.generator = generator or FeedbackGenerator(sender_ssrc=0)
        self.feedback_sent = 0

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        seq = item.packet.extensions.transport_sequence_number
        if seq is not None:
            if not self.generator.media_ssrc:
                self.generator.media_ssrc = item.packet.ssrc
            self.generator.on_packet(seq, now)
        return item

    def poll(self, now: float) -> Iterable[Feedback]:
        packets = self.generator.feedback(now)
        self.feedback_sent += len(packets)
        return [_TwccFeedback(p) for p in packets]

    def next_wakeup(self) -> float | None:
        return self.generator.next_wakeup()
