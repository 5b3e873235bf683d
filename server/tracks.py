"""Video tracks that hand frames to aiortc's RTP sender.

Both take :class:`RenderedFrame`s from the session (``put``, event loop thread).
``PacketTrack`` (the tuned stack) returns their encoded ``av.Packet``s: the
sender only packetizes them, so the encoder, its settings and its pacing are
ours. ``StockTrack`` (the baseline) returns raw frames paced by aiortc's
``VideoStreamTrack.next_timestamp`` and lets aiortc encode, as a user of stock
aiortc would. Which one a viewer gets is its media stack's choice
(:mod:`cloudarcade.stacks`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from cloudarcade.encoder import EncodedFrame
from cloudarcade.protocol import FrameTiming
from cloudarcade.server.pipeline import RenderedFrame


class ViewerTrack(MediaStreamTrack):
    """A viewer's video track: aiortc's sender reads it, the session ``put``s frames in."""

    kind = "video"

    def put(self, frame: RenderedFrame) -> None:
        """Offer a frame (event loop thread only)."""
        raise NotImplementedError


class PacketTrack(ViewerTrack):
    """A video track of pre-encoded packets, in order, never dropped silently.

    Encoded frames cannot be dropped without breaking the decoder's references,
    so the queue here is bounded by ``max_backlog`` and overflow flushes it and
    asks for a keyframe (``on_overflow``). The time the sender comes back for
    the next packet is when it finished sending the previous one: that is the
    previous frame's ``last_packet_sent``, reported through ``on_sent``.
    """

    kind = "video"

    def __init__(
        self,
        *,
        on_sent: Callable[[FrameTiming], None],
        on_overflow: Callable[[int], None],
        max_backlog: int = 8,
    ) -> None:
        super().__init__()
        self._queue: deque[tuple[EncodedFrame, FrameTiming]] = deque()
        self._ready = asyncio.Event()
        self._on_sent = on_sent
        self._on_overflow = on_overflow
        self._max_backlog = max_backlog
        self._in_flight: FrameTiming | None = None

    def put(self, frame: RenderedFrame) -> None:
        """Queue an encoded frame (event loop thread only)."""
        if frame.encoded is None:
            raise ValueError(f"frame {frame.timing.frame_id} is not encoded; PacketTrack "
                             "sends only what an EncoderSink encoded")
        if len(self._queue) >= self._max_backlog:
            dropped = len(self._queue)
            self._queue.clear()
            self._on_overflow(dropped)
        self._queue.append((frame.encoded, frame.timing))
        self._ready.set()

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        now = time.monotonic()
        if self._in_flight is not None:
            self._in_flight.last_packet_sent = now
            self._on_sent(self._in_flight)
            self._in_flight = None
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        encoded, timing = self._queue.popleft()
        timing.packetized = time.monotonic()
        self._in_flight = timing
        return encoded.packet

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class StockTrack(VideoStreamTrack, ViewerTrack):
    """The baseline: aiortc's own pacing (``next_timestamp``) and encoder.

    It returns the latest rendered frame each time aiortc asks; encoding and
    the pts clock are aiortc's. ``on_sent`` gets the frame's timing with
    ``packetized`` set to the hand-over time, which is all we can see.
    """

    def __init__(self, *, on_sent: Callable[[FrameTiming], None]) -> None:
        super().__init__()
        self._latest: RenderedFrame | None = None
        self._fresh = asyncio.Event()
        self._on_sent = on_sent
        self._in_flight: FrameTiming | None = None

    def put(self, raw: RenderedFrame) -> None:
        """Offer a new rendered frame (event loop thread only); latest wins."""
        self._latest = raw
        self._fresh.set()

    async def recv(self) -> av.VideoFrame:
        now = time.monotonic()
        if self._in_flight is not None:
            self._in_flight.last_packet_sent = now
            self._on_sent(self._in_flight)
            self._in_flight = None
        pts, time_base = await self.next_timestamp()
        while self._latest is None:
            self._fresh.clear()
            await self._fresh.wait()
        raw, self._latest = self._latest, None
        raw.timing.packetized = time.monotonic()
        self._in_flight = raw.timing
        frame = raw.frame
        frame.pts = pts
        frame.time_base = time_base
        return frame

    def stop(self) -> None:
        super().stop()
        self._fresh.set()
