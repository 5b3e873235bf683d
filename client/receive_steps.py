"""The tuned client's own receive steps: NACK with retries, and frame reassembly with PLI.

Both are sans-I/O :class:`~cloudarcade.rtc.seam.ReceiveStep`s around the
sans-I/O :class:`NackTracker` and :class:`FrameAssembler`; the seam sends
their feedback and arms their wake-ups. See docs/aiortc.md for what they
change against aiortc's receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiortc.codecs import depayload

from cloudarcade.client.assembler import KEYFRAME_DETECTORS, AssembledFrame, FrameAssembler
from cloudarcade.client.nack import NackTracker
from cloudarcade.rtc.packet import Feedback, Nack, Pli
from cloudarcade.rtc.seam import ReceiveStep, RtpIn

logger = logging.getLogger(__name__)

# A sink for assembled frames; returns False when it had to drop its backlog
# (the decoder fell behind), which asks for a keyframe.
FrameSink = Callable[[AssembledFrame], bool]


class NackRequests(ReceiveStep):
    """NACK each gap at once, then every ``retry_interval`` (see :class:`NackTracker`).

    ``given_up_through`` (the reassembly's :attr:`Reassembly.skipped_through`)
    says which sequence numbers no longer matter: their frame was given up.
    """

    def __init__(
        self, tracker: NackTracker, given_up_through: Callable[[], int | None]
    ) -> None:
        self.tracker = tracker
        self._given_up_through = given_up_through
        self._media_ssrc: int | None = None

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        self._media_ssrc = item.packet.ssrc
        self.tracker.received(item.packet.sequence_number, now)
        return item

    def poll(self, now: float) -> Iterable[Feedback]:
        if self._media_ssrc is None:
            return ()
        skipped = self._given_up_through()
        if skipped is not None:
            self.tracker.forget_through(skipped)
        lost = self.tracker.due(now)
        return [Nack(self._media_ssrc, lost)] if lost else ()

    def next_wakeup(self) -> float | None:
        return self.tracker.next_wakeup()


class Reassembly(ReceiveStep):
    """Depayload, reassemble with :class:`FrameAssembler`, hand frames to a sink, ask for keyframes.

    ``open_sink(codec_name)`` is called with the first packet's codec and
    returns where complete frames go. A PLI goes out once per need, and again
    every ``pli_interval`` while the keyframe does not come (the PLI or the
    keyframe may be lost).
    """

    def __init__(
        self,
        open_sink: Callable[[str], FrameSink],
        *,
        loss_timeout: float = 0.2,
        pli_interval: float = 0.25,
        start: float = 0.0,
    ) -> None:
        self._open_sink = open_sink
        self.loss_timeout = loss_timeout
        self.pli_interval = pli_interval
        self.assembler: FrameAssembler | None = None
        self._sink: FrameSink | None = None
        self._media_ssrc: int | None = None
        self._last_pli = start
        self._now = start
        self.plis_sent = 0
        self.packets = 0
        self._behind = False

    @property
    def skipped_through(self) -> int | None:
        return None if self.assembler is None else self.assembler.skipped_through

    def keyframe_needed(self) -> None:
        """Ask for a keyframe at the next poll (the decoder failed, say)."""
        if self.assembler is not None:
            self.assembler.keyframe_needed = True

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        codec, packet = item.codec, item.packet
        assert codec is not None  # Statistics drops unknown payload types
        self.packets += 1
        if self.assembler is None:
            name = codec.name.lower()
            detector = KEYFRAME_DETECTORS.get(name)
            if detector is None:
                raise ValueError(f"no receive path for codec {name!r}; expected h264 or vp8")
            self.assembler = FrameAssembler(detector, loss_timeout=self.loss_timeout)
            self._sink = self._open_sink(name)
            self._media_ssrc = packet.ssrc
        try:
            data = depayload(codec, packet.payload) if packet.payload else b""
        except ValueError as exc:
            logger.debug("bad RTP payload: %s", exc)
            return None
        self._deliver(self.assembler.push(
            packet.sequence_number, packet.timestamp, bool(packet.marker), data, now
        ))
        return item

    def _deliver(self, frames: list[AssembledFrame]) -> None:
        assert self._sink is not None and self.assembler is not None
        for frame in frames:
            if self._sink(frame):
                self._behind = False
                continue
            # Once an episode: a decoder that is behind refuses every frame until
            # the keyframe, and a warning each printed 45 identical lines in 2 ms.
            if not self._behind:
                logger.warning("decoder fell behind; flushed its queue, asking for a keyframe")
            self._behind = True
            self.assembler.keyframe_needed = True

    def poll(self, now: float) -> Iterable[Feedback]:
        self._now = now
        assembler = self.assembler
        if assembler is None or self._media_ssrc is None:
            return ()
        self._deliver(assembler.poll(now))
        overdue = assembler.waiting_keyframe and now - self._last_pli >= self.pli_interval
        if assembler.keyframe_needed or overdue:
            assembler.keyframe_needed = False
            self._last_pli = now
            self.plis_sent += 1
            return [Pli(self._media_ssrc)]
        return ()

    def next_wakeup(self) -> float | None:
        assembler = self.assembler
        if assembler is None:
            return None
        wakeups: list[float] = []
        if assembler.has_pending:
            wakeups.append(self._now + self.loss_timeout / 4)
        if assembler.waiting_keyframe:
            wakeups.append(self._last_pli + self.pli_interval)
        return min(wakeups) if wakeups else None
