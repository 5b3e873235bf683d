"""Reassemble encoded frames from RTP packets and release them at once (sans-I/O).

aiortc's jitter buffer releases a frame only when the first packet of the
*next* frame arrives (a full frame interval later) and at most one frame per
arriving packet. Here a frame is released as soon as its marker packet and
every packet before it are in, and every complete frame is released in the
same call.

A frame that stays incomplete longer than ``loss_timeout`` while later frames
have arrived is given up: the assembler skips past it and releases nothing
until the next keyframe (a decoder fed a frame with a missing reference only
produces garbage). ``keyframe_needed`` tells the caller to send a PLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudarcade.client.nack import SequenceUnwrapper


@dataclass
class _Packet:
    timestamp: int
    marker: bool
    data: bytes
    arrival: float


@dataclass
class AssembledFrame:
    """One complete encoded frame."""

    timestamp: int  # RTP timestamp
    data: bytes
    keyframe: bool
    first_seq: int  # extended sequence numbers
    last_seq: int
    first_packet_recv: float
    frame_complete: float


class FrameAssembler:
    def __init__(
        self,
        is_keyframe: Callable[[bytes], bool],
        *,
        loss_timeout: float = 0.2,
        capacity: int = 4096,
    ) -> None:
        self._is_keyframe = is_keyframe
        self.loss_timeout = loss_timeout
        self.capacity = capacity
        self._unwrapper = SequenceUnwrapper()
        self._packets: dict[int, _Packet] = {}
        self._start: int | None = None  # extended seq where the next frame begins
        self._stuck_since: float | None = None
        self._waiting_keyframe = True
        self.keyframe_needed = False
        self.frames_released = 0
        self.frames_skipped = 0  # incomplete frames given up
        self.frames_discarded = 0  # complete frames dropped while waiting for a keyframe

    def push(
        self, seq: int, timestamp: int, marker: bool, data: bytes, now: float
    ) -> list[AssembledFrame]:
        """Add one depayloaded packet; return every frame it completes."""
        ext = self._unwrapper.unwrap(seq)
        if self._start is None:
            self._start = ext
        if ext < self._start or ext in self._packets:
            return []  # late or duplicate (a retransmission of what we have)
        self._packets[ext] = _Packet(timestamp, marker, data, now)
        if len(self._packets) > self.capacity:
            self._skip_to_last_marker()
        return self.poll(now)

    def poll(self, now: float) -> list[AssembledFrame]:
        """Release what is complete; give up a frame stuck longer than the timeout."""
        out: list[AssembledFrame] = []
        while True:
            frame = self._take_head(now)
            if frame is not None:
                self._stuck_since = None
                if self._waiting_keyframe and not frame.keyframe:
                    self.frames_discarded += 1
                    continue
                if frame.keyframe:
                    self._waiting_keyframe = False
                    self.keyframe_needed = False
                self.frames_released += 1
                out.append(frame)
                continue
            if not self._packets:
                self._stuck_since = None
                return out
            if self._stuck_since is None:
                self._stuck_since = now
            if now - self._stuck_since >= self.loss_timeout and self._has_later_marker():
                self._skip_head()
                continue
            return out

    def _take_head(self, now: float) -> AssembledFrame | None:
        assert self._start is not None
        start = self._start
        head = self._packets.get(start)
        if head is None:
            return None
        ext = start
        while True:
            packet = self._packets.get(ext)
            if packet is None:
                return None
            if packet.timestamp != head.timestamp:
                last = ext - 1  # the marker packet was lost in flight but the frame is whole
                break
            if packet.marker:
                last = ext
                break
            ext += 1
        parts = [self._packets.pop(s) for s in range(start, last + 1)]
        self._start = last + 1
        data = b"".join(p.data for p in parts)
        return AssembledFrame(
            timestamp=head.timestamp,
            data=data,
            keyframe=self._is_keyframe(data),
            first_seq=start,
            last_seq=last,
            first_packet_recv=min(p.arrival for p in parts),
            frame_complete=now,
        )

    def _has_later_marker(self) -> bool:
        return any(p.marker for p in self._packets.values())

    def _skip_head(self) -> None:
        """Drop everything up to the first marker we hold; wait for a keyframe."""
        assert self._start is not None
        marker = min(s for s, p in self._packets.items() if p.marker)
        self._drop_through(marker)

    def _skip_to_last_marker(self) -> None:
        markers = [s for s, p in self._packets.items() if p.marker]
        if markers:
            self._drop_through(max(markers))
        else:
            self._packets.clear()

    def _drop_through(self, ext: int) -> None:
        for seq in [s for s in self._packets if s <= ext]:
            del self._packets[seq]
        self._start = ext + 1
        self._stuck_since = None
        self.frames_skipped += 1
        self._waiting_keyframe = True
        self.keyframe_needed = True

    @property
    def waiting_keyframe(self) -> bool:
        """True while frames are held back until the next keyframe."""
        return self._waiting_keyframe

    @property
    def has_pending(self) -> bool:
        """True while packets of an unreleased frame are held."""
        return bool(self._packets)

    @property
    def skipped_through(self) -> int | None:
        """The last extended sequence number given up (NACKs before it are moot)."""
        return None if self._start is None else self._start - 1


def h264_is_keyframe(data: bytes) -> bool:
    """True if an Annex-B access unit holds an IDR slice or an SPS."""
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        nal_type = data[i + 3] & 0x1F
        if nal_type in (5, 7):
            return True
        i += 3


def vp8_is_keyframe(data: bytes) -> bool:
    """True if a VP8 frame is a key frame (frame tag bit 0 clear)."""
    return bool(data) and not data[0] & 0x01


KEYFRAME_DETECTORS: dict[str, Callable[[bytes], bool]] = {
    "h264": h264_is_keyframe,
    "vp8": vp8_is_keyframe,
}
