"""The Python client's video receive paths: ours on a seam, and stock aiortc's.

Both hand each decoded picture to an :data:`OnFrame` callback with its frame
code and the client-side stage timestamps; the media stack
(:mod:`cloudarcade.stacks`) picks which one a client gets.

aiortc 1.16's receiver (see docs/aiortc.md for the measurements):
- releases a frame only when the next frame's first packet arrives (+1 frame);
- releases at most one frame per arriving packet (backlogs after a loss);
- NACKs each gap once, with no retry;
- feeds an unbounded decoder queue and an unbounded decoded-frame queue.

:class:`TunedVideoReceiver` runs the receiver's RTP through these steps, in
order: aiortc's REMB estimate, RTCP statistics (so receiver reports and RTT
still work) and RTX unwrapping, then our NACK with retries
(:class:`NackRequests`) and reassembly with PLI (:class:`Reassembly`), whose
frames go to a bounded :class:`DecoderThread`. When the server's answer
announces FEC parity, :class:`~cloudarcade.rtc.fec_steps.FecReceive` goes in
after transport-cc feedback and injects the packets it rebuilds. Add a step (congestion
feedback, say) by inserting it into ``steps()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from cloudarcade import framecode
from cloudarcade.cc.steps import TransportFeedbackStep
from cloudarcade.client.decoder import DecodedFrame, DecoderThread
from cloudarcade.client.nack import NackTracker
from cloudarcade.client.receive_steps import FrameSink, NackRequests, Reassembly
from cloudarcade.rtc import fec_sdp
from cloudarcade.rtc.fec_steps import FecReceive
from cloudarcade.rtc.seam import ReceiverSeam
from cloudarcade.rtc.steps import RembEstimate, RtxUnwrap, Statistics

# A decoded picture, its frame code (None if unreadable) and the client's stage
# timestamps (``cloudarcade.stages`` names), called on the event loop.
OnFrame = Callable[[av.VideoFrame, framecode.FrameCode | None, dict[str, float]], None]


class VideoReceive(Protocol):
    """A client's receive path for one video transceiver."""

    @property
    def stats(self) -> dict[str, int] | None:
        """Counters of the receive path (packets, NACKs, PLIs, ...), None if it has none."""

    def answered(self, sdp: str) -> None:
        """The server's answer is set: take up what it negotiated (ValueError if malformed)."""

    async def aclose(self) -> None: ...


def decoded_stamps(decoded: DecodedFrame) -> dict[str, float]:
    """The client stages of a frame our receive path decoded."""
    return {
        "first_packet_recv": decoded.first_packet_recv,
        "frame_complete": decoded.frame_complete,
        "decode_start": decoded.decode_start,
        "decode_end": decoded.decode_end,
        # No display: the photon is the decoded picture.
        "photon": decoded.decode_end,
    }


class TunedVideoReceiver:
    """Our receive path for one video ``RTCRtpReceiver``.

    ``on_frame`` is called on the event loop for every decoded frame.
    """

    PLI_INTERVAL = 0.25

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        on_frame: Callable[[DecodedFrame], None],
        *,
        loss_timeout: float = 0.2,
        nack_retry_interval: float = 0.02,
    ) -> None:
        self._on_frame = on_frame
        self._loop = asyncio.get_running_loop()
        self._decoder: DecoderThread | None = None
        self._closed = False
        self.seam = ReceiverSeam(receiver)
        self.reassembly = Reassembly(self._open_decoder, loss_timeout=loss_timeout,
                                     pli_interval=self.PLI_INTERVAL, start=time.monotonic())
        self.nack = NackRequests(NackTracker(retry_interval=nack_retry_interval),
                                 lambda: self.reassembly.skipped_through)
        self.statistics = Statistics(self.seam.remote_streams)
        # Transport-cc feedback for every packet with a transport-wide sequence
        # number (RTX included), so it comes before anything that drops packets.
        self.transport_feedback = TransportFeedbackStep()
        self.fec: FecReceive | None = None  # when the answer announces parity
        self.seam.steps += [
            self.transport_feedback,
            RembEstimate(),
            self.statistics,
            RtxUnwrap(self.seam.rtx_ssrc, self.seam.codecs),
            self.nack,
            self.reassembly,
        ]

    @classmethod
    def for_frames(cls, receiver: RTCRtpReceiver, on_frame: OnFrame) -> TunedVideoReceiver:
        """A receive path that reports frames as :data:`OnFrame` does."""
        return cls(receiver, lambda d: on_frame(d.frame, d.code, decoded_stamps(d)))

    def install(self) -> None:
        self.seam.install()

    def answered(self, sdp: str) -> None:
        """Receive FEC parity when the answer announces it (docs/fec.md)."""
        params = fec_sdp.from_answer(sdp)
        if params is None or self.fec is not None:
            return
        self.fec = FecReceive(payload_type=params.payload_type, ssrc=params.ssrc,
                              codecs=self.seam.codecs)
        # After transport-cc feedback (parity counts for the controller), before
        # Statistics, which drops payload types the receiver does not know.
        self.seam.steps.insert(self.seam.steps.index(self.transport_feedback) + 1, self.fec)
        self.seam.route(ssrc=params.ssrc, payload_type=params.payload_type)

    async def aclose(self) -> None:
        # Joining the decoder thread blocks: off the loop.
        await asyncio.to_thread(self.close)

    @property
    def stats(self) -> dict[str, int]:
        a, d, nack = self.reassembly.assembler, self._decoder, self.nack.tracker
        return {
            "packets": self.reassembly.packets,
            "nacks_sent": nack.nacks_sent,
            "nacks_given_up": nack.given_up,
            "plis_sent": self.reassembly.plis_sent,
            "frames_released": a.frames_released if a else 0,
            "frames_skipped": a.frames_skipped if a else 0,
            "frames_discarded": a.frames_discarded if a else 0,
            "decoded": d.decoded if d else 0,
            "decode_errors": d.errors if d else 0,
            "decoder_flushes": d.flushes if d else 0,
            "transport_feedback_sent": self.transport_feedback.feedback_sent,
            "fec_parity_received": self.fec.parity_received if self.fec else 0,
            "fec_recovered": self.fec.recovered if self.fec else 0,
            "fec_parity_errors": self.fec.parity_errors if self.fec else 0,
        }

    def close(self) -> None:
        self._closed = True
        self.seam.close()
        if self._decoder is not None:
            self._decoder.stop()

    def _open_decoder(self, codec_name: str) -> FrameSink:
        self._decoder = DecoderThread(
            codec_name, self._frame_from_thread, on_error=self._error_from_thread
        )
        self._decoder.start()
        return self._decoder.submit

    def _frame_from_thread(self, frame: DecodedFrame) -> None:
        self._loop.call_soon_threadsafe(self._deliver, frame)

    def _deliver(self, frame: DecodedFrame) -> None:
        if not self._closed:
            self._on_frame(frame)

    def _error_from_thread(self) -> None:
        self._loop.call_soon_threadsafe(self.reassembly.keyframe_needed)


class StockVideoReceiver:
    """aiortc's own receive path: its jitter buffer, decoder and track, unchanged.

    Frames are timed when the track returns them; that is all we can see.
    """

    def __init__(self, pc: RTCPeerConnection, on_frame: OnFrame) -> None:
        self._on_frame = on_frame
        self._task: asyncio.Task[None] | None = None
        pc.on("track", self._on_track)

    @property
    def stats(self) -> dict[str, int] | None:
        return None

    def answered(self, sdp: str) -> None:
        pass  # aiortc's own path negotiates nothing of ours

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._task = asyncio.ensure_future(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            assert isinstance(frame, av.VideoFrame)
            code = framecode.read_from_frame(frame)
            self._on_frame(frame, code, {"decode_end": now, "photon": now})

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
