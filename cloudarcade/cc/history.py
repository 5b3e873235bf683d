"""The sender's record of transport-wide sequence numbers, matched against feedback.

``on_sent(size, now)`` hands out the next transport-wide sequence number (16
bits, for the RTP header extension) and remembers when and how big the packet
was; ``on_feedback(feedback)`` turns a transport-cc packet into
``PacketResult``s: send time, size and arrival (None when reported lost).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .twcc import REFERENCE_MODULO, SEQ_MODULO, TransportFeedback

# Two seconds at 10k packets/s: feedback for anything older is useless.
_MAX_HISTORY = 1 << 15
_REFERENCE_SPAN_S = REFERENCE_MODULO * 0.064


@dataclass(frozen=True)
class PacketResult:
    """One sent packet as the receiver reported it."""

    seq: int  # unwrapped transport-wide sequence number
    size: int  # bytes on the wire (RTP header + payload)
    send_time: float  # sender's clock, seconds
    arrival: float | None  # receiver's clock, seconds; None = reported lost


@dataclass
class _Sent:
    size: int
    send_time: float
    acked: bool = False


class SentPacketHistory:
    """Sent packets by transport-wide sequence number, until feedback covers them."""

    def __init__(self, max_packets: int = _MAX_HISTORY) -> None:
        # Ordered for O(1) eviction of the oldest: a dict's next(iter()) skips every
        # slot deleted from its front since its last resize, up to ~20 us a packet
        # once the history is full.
        self._sent: OrderedDict[int, _Sent] = OrderedDict()
        self._next = 0
        self._max = max_packets
        self._reference_offset = 0.0
        self._last_reference: int | None = None

    def on_sent(self, size: int, now: float) -> int:
        """Number and record a packet going out now; returns its 16-bit sequence number."""
        seq = self.allocate()
        self.record(seq, size, now)
        return seq

    def allocate(self) -> int:
        """The next 16-bit sequence number, for a packet to be recorded when it leaves."""
        seq = self._next
        self._next += 1
        return seq % SEQ_MODULO

    def record(self, seq16: int, size: int, now: float) -> None:
        """Record that the packet numbered ``seq16`` (from ``allocate``) left at ``now``."""
        self._sent[self._unwrap(seq16)] = _Sent(size, now)
        while len(self._sent) > self._max:
            self._sent.popitem(last=False)

    def _unwrap(self, seq16: int) -> int:
        """The most recent sent sequence number whose low 16 bits are ``seq16``."""
        last = self._next - 1
        return last - ((last - seq16) % SEQ_MODULO)

    def _arrival_offset(self, reference: int) -> float:
        # Reference time wraps every 12.4 days; keep arrivals monotonic across it.
        if self._last_reference is not None:
            diff = reference - self._last_reference
            if diff < -REFERENCE_MODULO // 2:
                self._reference_offset += _REFERENCE_SPAN_S
            elif diff > REFERENCE_MODULO // 2:
                self._reference_offset -= _REFERENCE_SPAN_S
        self._last_reference = reference
        return self._reference_offset

    def on_feedback(self, feedback: TransportFeedback) -> list[PacketResult]:
        """Results for the packets this feedback covers that are still in the history.

        A packet is reported received once; a packet reported lost may be
        reported again (as received) by later feedback.
        """
        offset = self._arrival_offset(feedback.reference_time)
        base = self._unwrap(feedback.base_sequence)
        results: list[PacketResult] = []
        for i, (_, arrival) in enumerate(feedback.packets()):
            seq = base + i
            item = self._sent.get(seq)
            if item is None or item.acked:
                continue
            if arrival is None:
                results.append(PacketResult(seq, item.size, item.send_time, None))
            else:
                item.acked = True
                results.append(PacketResult(seq, item.size, item.send_time, arrival + offset))
        return results
