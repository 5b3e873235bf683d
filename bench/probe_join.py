"""Joins a client's shown frames, the server's frame records and the probes sent.

Sans-I/O: a client feeds it what it saw (frames with their frame code and its
own stamps), what the server said (``FrameTiming`` records from the ``frames``
channel) and the probes it sent; it calls ``on_frame`` for every frame joined
with its record and ``on_probe`` for every probe once its frame is joined.
A probe's photon is the first frame whose ``input_seq`` reaches the probe's
seq, the same rule as the headless client's. Frames must be fed in the order
they were shown; a frame id at or below one already fed is counted in
``stale`` and ignored (shown frames only move forwards).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.protocol import FrameTiming

# Frames and records wait at most this many entries for their other half.
JOIN_WINDOW = 600


class ProbeJoiner:
    def __init__(
        self,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
        window: int = JOIN_WINDOW,
    ) -> None:
        self._on_frame = on_frame
        self._on_probe = on_probe
        self._window = window
        self._pending: OrderedDict[int, ProbeResult] = OrderedDict()
        self._records: OrderedDict[int, FrameTiming] = OrderedDict()
        self._unjoined: OrderedDict[int, FrameResult] = OrderedDict()
        self._waiting: dict[int, list[ProbeResult]] = {}
        self._last_id = -1
        self.stale = 0

    def pressed(self, seq: int, input_sent: float) -> ProbeResult:
        """A probe with input ``seq`` was sent at ``input_sent``."""
        probe = ProbeResult(seq=seq, input_sent=input_sent)
        self._pending[seq] = probe
        return probe

    def frame(self, result: FrameResult) -> None:
        """A frame was shown (``result.client`` holds its client-side stamps)."""
        if result.frame_id <= self._last_id:
            self.stale += 1
            return
        self._last_id = result.frame_id
        record = self._records.pop(result.frame_id, None)
        if record is not None:
            self._joined(result, record)
        else:
            self._unjoined[result.frame_id] = result
            while len(self._unjoined) > self._window:
                self._unjoined.popitem(last=False)
        while self._pending:
            seq, probe = next(iter(self._pending.items()))
            if seq > result.input_seq:
                break
            self._pending.popitem(last=False)
            probe.frame = result
            if result.server is not None:
                self._report(probe)
            else:
                self._waiting.setdefault(result.frame_id, []).append(probe)

    def record(self, record: FrameTiming) -> None:
        """The server's record of a frame arrived."""
        result = self._unjoined.pop(record.frame_id, None)
        if result is not None:
            self._joined(result, record)
        else:
            self._records[record.frame_id] = record
            while len(self._records) > self._window:
                self._records.popitem(last=False)

    def undecoded_records(self) -> list[FrameTiming]:
        """Records of frames that were sent but never shown (so far)."""
        return list(self._records.values())

    def finish(self) -> None:
        """Report every probe still open: no frame (a miss) or no record yet."""
        for probe in self._pending.values():
            self._report(probe)
        for probes in self._waiting.values():
            for probe in probes:
                self._report(probe)
        self._pending.clear()
        self._waiting.clear()

    def _joined(self, result: FrameResult, record: FrameTiming) -> None:
        result.server = record
        if self._on_frame is not None:
            self._on_frame(result)
        for probe in self._waiting.pop(result.frame_id, ()):
            self._report(probe)

    def _report(self, probe: ProbeResult) -> None:
        if self._on_probe is not None:
            self._on_probe(probe)
