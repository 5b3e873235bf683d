"""The tuned video receive path, installed into an aiortc ``RTCRtpReceiver``.

aiortc 1.16's receiver (see docs/aiortc.md for the measurements):
- releases a frame only when the next frame's first packet arrives (+1 frame);
- releases at most one frame per arriving packet (backlogs after a loss);
- NACKs each gap once, with no retry;
- feeds an unbounded decoder queue and an unbounded decoded-frame queue.

``TunedVideoReceiver.install`` replaces the receiver's ``_handle_rtp_packet``
with one that keeps aiortc's RTCP statistics (so receiver reports and RTT
still work) but reassembles with :class:`FrameAssembler`, NACKs with
:class:`NackTracker` on a retry timer and decodes on a bounded
:class:`DecoderThread`. It reaches into name-mangled private state of
``RTCRtpReceiver``, which is why aiortc is pinned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.codecs import depayload, is_rtx
from aiortc.rtp import RtpPacket, unwrap_rtx

from cloudarcade.client.assembler import KEYFRAME_DETECTORS, FrameAssembler
from cloudarcade.client.decoder import DecodedFrame, DecoderThread
from cloudarcade.client.nack import NackTracker

logger = logging.getLogger(__name__)


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
        self._receiver = receiver
        self._on_frame = on_frame
        self._loop = asyncio.get_running_loop()
        self._loss_timeout = loss_timeout
        self._nack = NackTracker(retry_interval=nack_retry_interval)
        self._assembler: FrameAssembler | None = None
        self._decoder: DecoderThread | None = None
        self._media_ssrc: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self.plis_sent = 0
        self.packets = 0
        self._last_pli = time.monotonic()

    # The private state of aiortc's RTCRtpReceiver we rely on (pinned version).
    @property
    def _codecs(self) -> dict[int, Any]:
        return self._receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined,no-any-return]

    @property
    def _rtx_ssrc(self) -> dict[int, int]:
        return self._receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined,no-any-return]

    @property
    def _remote_streams(self) -> dict[int, Any]:
        return self._receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined,no-any-return]

    def install(self) -> None:
        self._receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]

    @property
    def stats(self) -> dict[str, int]:
        a, d = self._assembler, self._decoder
        return {
            "packets": self.packets,
            "nacks_sent": self._nack.nacks_sent,
            "nacks_given_up": self._nack.given_up,
            "plis_sent": self.plis_sent,
            "frames_released": a.frames_released if a else 0,
            "frames_skipped": a.frames_skipped if a else 0,
            "frames_discarded": a.frames_discarded if a else 0,
            "decoded": d.decoded if d else 0,
            "decode_errors": d.errors if d else 0,
            "decoder_flushes": d.flushes if d else 0,
        }

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._decoder is not None:
            self._decoder.stop()

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        now = time.monotonic()
        if self._closed:
            return
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        streams = self._remote_streams
        if packet.ssrc not in streams:
            from aiortc.rtcrtpreceiver import StreamStatistics

            streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        streams[packet.ssrc].add(packet)

        if is_rtx(codec):
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in self._codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = self._codecs[apt]

        self.packets += 1
        if self._assembler is None:
            self._start(codec.name.lower(), packet.ssrc)
        assert self._assembler is not None and self._decoder is not None
        self._nack.received(packet.sequence_number, now)
        try:
            data = depayload(codec, packet.payload) if packet.payload else b""
        except ValueError as exc:
            logger.debug("bad RTP payload: %s", exc)
            return
        frames = self._assembler.push(
            packet.sequence_number, packet.timestamp, bool(packet.marker), data, now
        )
        for frame in frames:
            if not self._decoder.submit(frame):
                logger.warning("decoder fell behind; flushed its queue, asking for a keyframe")
                self._assembler.keyframe_needed = True
        await self._service(now)

    def _start(self, codec_name: str, ssrc: int) -> None:
        self._media_ssrc = ssrc
        detector = KEYFRAME_DETECTORS.get(codec_name)
        if detector is None:
            raise ValueError(f"no receive path for codec {codec_name!r}; expected h264 or vp8")
        self._assembler = FrameAssembler(detector, loss_timeout=self._loss_timeout)
        self._decoder = DecoderThread(
            codec_name, self._frame_from_thread, on_error=self._error_from_thread
        )
        self._decoder.start()

    def _frame_from_thread(self, frame: DecodedFrame) -> None:
        self._loop.call_soon_threadsafe(self._deliver, frame)

    def _deliver(self, frame: DecodedFrame) -> None:
        if not self._closed:
            self._on_frame(frame)

    def _error_from_thread(self) -> None:
        self._loop.call_soon_threadsafe(self._decode_error)

    def _decode_error(self) -> None:
        if self._assembler is not None:
            self._assembler.keyframe_needed = True

    async def _service(self, now: float) -> None:
        """Send due NACKs and a PLI if one is needed; arm the one timer."""
        assert self._assembler is not None and self._media_ssrc is not None
        skipped = self._assembler.skipped_through
        if skipped is not None:
            self._nack.forget_through(skipped)
        lost = self._nack.due(now)
        if lost:
            await self._receiver._send_rtcp_nack(self._media_ssrc, lost)
        overdue = (
            self._assembler.waiting_keyframe and now - self._last_pli >= self.PLI_INTERVAL
        )
        if self._assembler.keyframe_needed or overdue:
            # Asked once per need, and again every PLI_INTERVAL while the
            # keyframe does not come (the PLI or the keyframe may be lost).
            self._assembler.keyframe_needed = False
            self._last_pli = now
            self.plis_sent += 1
            await self._receiver._send_rtcp_pli(self._media_ssrc)
        self._arm(now)

    def _arm(self, now: float) -> None:
        assert self._assembler is not None
        wakeups = [t for t in (self._nack.next_wakeup(),) if t is not None]
        if self._assembler.has_pending:
            wakeups.append(now + self._loss_timeout / 4)
        if self._assembler.waiting_keyframe:
            wakeups.append(self._last_pli + self.PLI_INTERVAL)
        if not wakeups:
            return
        at = min(wakeups)
        if self._timer is not None and self._timer_at is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(at - time.monotonic(), 0.0)
        self._timer_at = at
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed or self._assembler is None or self._decoder is None:
            return
        now = time.monotonic()
        for frame in self._assembler.poll(now):
            if not self._decoder.submit(frame):
                self._assembler.keyframe_needed = True
        self._loop.create_task(self._service(now))
