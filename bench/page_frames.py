"""Presented frames meet their frame codes by RTP timestamp, in the order shown.

The page logs two streams (client/web/js/bench.js): the frames it presented
(``requestVideoFrameCallback``, with the RTP timestamp and the times) and the
frame codes it read from every decoded frame (with the RTP timestamp of that
frame). A frame's code is usually logged before it is presented, but not
always in the same drain; :class:`PresentedFrames` holds a presented frame
until its code arrives, keeps the order, and gives up on one after
``patience`` drains (counted in ``unmatched``). Sans-I/O.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable

from cloudarcade.bench.browser_stages import PageCode, PageFrame

# Codes kept for frames not presented yet (or never: the compositor skips some).
KEEP_CODES = 600


class PresentedFrames:
    def __init__(self, patience: int = 3, keep: int = KEEP_CODES) -> None:
        self._patience = patience
        self._keep = keep
        self._codes: OrderedDict[int, PageCode] = OrderedDict()
        self._waiting: deque[tuple[PageFrame, int]] = deque()  # (frame, drains waited)
        self.unmatched = 0

    def add(self, frames: Iterable[PageFrame], codes: Iterable[PageCode]) -> None:
        """One drain's frames (in the order presented) and codes."""
        for code in codes:
            self._codes[code.rtp] = code
            while len(self._codes) > self._keep:
                self._codes.popitem(last=False)
        self._waiting.extend((frame, 0) for frame in frames)

    def ready(self) -> list[tuple[PageFrame, PageCode]]:
        """Frames whose code is known, in order; call once per drain."""
        out: list[tuple[PageFrame, PageCode]] = []
        held: deque[tuple[PageFrame, int]] = deque()
        while self._waiting:
            frame, waited = self._waiting.popleft()
            code = self._codes.get(frame.rtp)
            if code is not None and not held:
                out.append((frame, code))
            elif code is not None:
                held.append((frame, waited))
            elif waited + 1 >= self._patience:
                self.unmatched += 1
            else:
                held.append((frame, waited + 1))
        # A frame still waiting holds back those after it: the joiner needs them in order.
        while held and held[0][0].rtp in self._codes:
            frame, _ = held.popleft()
            out.append((frame, self._codes[frame.rtp]))
        self._waiting = held
        return out
