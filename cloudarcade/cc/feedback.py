"""The receiver's side of transport-cc: arrivals in, feedback packets out.

Sans-I/O: ``on_packet(seq, arrival)`` records each RTP packet's transport-wide
sequence number and arrival time (seconds, any monotonic clock);
``feedback(now)`` returns the RTCP packets due, and ``next_wakeup()`` when
to call it next (no ``now``, like the receive steps and the NACK tracker it
runs beside: the due time is state). Packets older than what was already
reported are ignored, as libwebrtc's ``RemoteEstimatorProxy`` does.
"""

from __future__ import annotations

import math

from cloudarcade.client.nack import SequenceUnwrapper

from .twcc import REFERENCE_MODULO, TICK_S, TICKS_PER_REFERENCE, TransportFeedback

#: Feedback every 25 ms, below libwebrtc's 50–250 ms: on the dip profile the
#: queue one second after the capacity drop was 49 ms instead of 573 ms with
#: 50 ms (one run each, docs/congestion.md); it costs ~20 kbit/s of uplink.
DEFAULT_INTERVAL_S = 0.025
# One feedback packet covers at most this many sequence numbers; a bigger gap
# starts afresh (the sender counts the gap as lost in its own history).
_MAX_SPAN = 8192
_MAX_DELTA = 32767


class FeedbackGenerator:
    """Builds transport-cc feedback for one media sender."""

    def __init__(
        self,
        *,
        sender_ssrc: int,
        media_ssrc: int = 0,
        interval: float = DEFAULT_INTERVAL_S,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"feedback interval {interval} s: expected > 0")
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = media_ssrc
        self.interval = interval
        self._unwrapper = SequenceUnwrapper()
        self._arrivals: dict[int, float] = {}
        self._next_seq: int | None = None  # first sequence number not yet reported
        self._count = 0
        self._due: float | None = None

    def on_packet(self, seq: int, arrival: float) -> None:
        """Record one RTP packet's transport-wide sequence number and arrival time."""
        unwrapped = self._unwrapper.unwrap(seq)
        if self._next_seq is not None and unwrapped < self._next_seq:
            return  # already reported (late or duplicate)
        if self._next_seq is None:
            self._next_seq = unwrapped
        self._arrivals.setdefault(unwrapped, arrival)
        if self._due is None:
            self._due = arrival + self.interval

    def next_wakeup(self) -> float | None:
        """When feedback is next due (possibly already past); None while nothing is pending."""
        return self._due

    def feedback(self, now: float) -> list[TransportFeedback]:
        """The feedback packets due at ``now`` (empty before ``next_wakeup``)."""
        if self._due is None or now < self._due or not self._arrivals:
            return []
        self._due = None
        packets: list[TransportFeedback] = []
        while self._arrivals:
            packets.append(self._build())
        return packets

    def _build(self) -> TransportFeedback:
        assert self._next_seq is not None
        received = sorted(self._arrivals)
        base = self._next_seq
        if received[0] - base > _MAX_SPAN:
            base = received[0]
        first_arrival = self._arrivals[received[0]]
        reference = math.floor(first_arrival / (TICKS_PER_REFERENCE * TICK_S))
        previous = reference * TICKS_PER_REFERENCE
        deltas: list[int | None] = []
        last = base - 1
        for seq in received:
            if seq - base >= _MAX_SPAN:
                break
            ticks = round(self._arrivals[seq] / TICK_S)
            delta = ticks - previous
            if not -_MAX_DELTA - 1 <= delta <= _MAX_DELTA:
                break  # does not fit: the rest goes in the next packet
            deltas.extend([None] * (seq - last - 1))
            deltas.append(delta)
            previous = ticks
            last = seq
            del self._arrivals[seq]
        self._next_seq = last + 1
        packet = TransportFeedback(
            sender_ssrc=self.sender_ssrc,
            media_ssrc=self.media_ssrc,
            base_sequence=base % (1 << 16),
            reference_time=reference % REFERENCE_MODULO,
            feedback_count=self._count % 256,
            deltas=tuple(deltas),
        )
        self._count += 1
        return packet
