"""Joins probes, decoded frames and the server's frame records, sans I/O.

Three streams arrive in any order: the probes the client sent (key-downs with
a sequence number), the frames it decoded (with the frame id and last applied
input seq read from their pixels), and the server's per-frame records on the
``frames`` channel. Like h11, :class:`FrameJoiner` takes them in (``probe_sent``,
``frame_decoded``, ``record_received``, ``finish``) and hands out events
(``next_event``) that say what became complete:

- :class:`FrameJoined`: a decoded frame now has its server record;
- :class:`ProbeDone`: a probe is finished, answered (``probe.frame`` is the
  first frame showing it, joined with its record) or missed at ``finish``.

A probe is answered by the first decoded frame whose input seq reaches it, and
reported once that frame's record has arrived too. Joins wait at most
``window`` frames on either side.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TypeVar

from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.protocol import FrameTiming

JOIN_WINDOW = 600
T = TypeVar("T")


@dataclass(frozen=True)
class FrameJoined:
    frame: FrameResult


@dataclass(frozen=True)
class ProbeDone:
    probe: ProbeResult

    @property
    def missed(self) -> bool:
        return self.probe.frame is None or self.probe.frame.server is None


Event = FrameJoined | ProbeDone


class FrameJoiner:
    """The join of probes, decoded frames and server records; see the module docstring."""

    def __init__(self, window: int = JOIN_WINDOW) -> None:
        self.window = window
        self._events: deque[Event] = deque()
        self._pending_probes: OrderedDict[int, ProbeResult] = OrderedDict()
        self._records: OrderedDict[int, FrameTiming] = OrderedDict()
        self._unjoined: OrderedDict[int, FrameResult] = OrderedDict()
        self._waiting_record: dict[int, list[ProbeResult]] = {}

    def probe_sent(self, probe: ProbeResult) -> None:
        """A probe went out; seqs must increase."""
        self._pending_probes[probe.seq] = probe

    def frame_decoded(self, frame: FrameResult) -> None:
        record = self._records.pop(frame.frame_id, None)
        if record is not None:
            self._join(frame, record)
        else:
            self._unjoined[frame.frame_id] = frame
            _bound(self._unjoined, self.window)
        # Every pending probe at or below the frame's input seq is now visible.
        while self._pending_probes:
            seq, probe = next(iter(self._pending_probes.items()))
            if seq > frame.input_seq:
                break
            self._pending_probes.popitem(last=False)
            probe.frame = frame
            if frame.server is not None:
                self._events.append(ProbeDone(probe))
            else:  # reported once the server's record of its frame arrives
                self._waiting_record.setdefault(frame.frame_id, []).append(probe)

    def record_received(self, record: FrameTiming) -> None:
        frame = self._unjoined.pop(record.frame_id, None)
        if frame is not None:
            self._join(frame, record)
        else:
            self._records[record.frame_id] = record
            _bound(self._records, self.window)

    def finish(self) -> None:
        """No more input: every probe still open is done (a miss)."""
        for probe in self._pending_probes.values():
            self._events.append(ProbeDone(probe))
        for probes in self._waiting_record.values():
            self._events.extend(ProbeDone(probe) for probe in probes)
        self._pending_probes.clear()
        self._waiting_record.clear()

    def next_event(self) -> Event | None:
        """The next event, or None when the joiner needs more input."""
        return self._events.popleft() if self._events else None

    def undecoded_records(self) -> list[FrameTiming]:
        """Server records of frames that were sent but not decoded (so far)."""
        return list(self._records.values())

    def _join(self, frame: FrameResult, record: FrameTiming) -> None:
        frame.server = record
        self._events.append(FrameJoined(frame))
        for probe in self._waiting_record.pop(frame.frame_id, ()):
            self._events.append(ProbeDone(probe))


def _bound(items: OrderedDict[int, T], size: int) -> None:
    while len(items) > size:
        items.popitem(last=False)
