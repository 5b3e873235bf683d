"""Decode assembled frames on a worker thread, never letting work pile up.

The input queue is bounded. Encoded frames can't be dropped one at a time (the
next ones reference them), so when the decoder falls ``max_queue`` frames
behind the queue is flushed and the caller asks for a keyframe. Decoded frames
are handed on at once to ``on_frame``; the consumer keeps only the latest.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av

from cloudarcade import framecode
from cloudarcade.client.assembler import AssembledFrame

logger = logging.getLogger(__name__)


@dataclass
class DecodedFrame:
    """A decoded picture with its identity and the client-side stamps of its path."""

    frame: av.VideoFrame
    code: framecode.FrameCode | None
    first_packet_recv: float
    frame_complete: float
    decode_start: float
    decode_end: float
    keyframe: bool


def open_decoder(codec: str) -> av.VideoCodecContext:
    """A decoder with frame threading off: frame threads add a frame of delay each."""
    ctx = av.CodecContext.create(codec, "r")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.thread_type = "SLICE"
    ctx.thread_count = 2
    return ctx


class DecoderThread:
    def __init__(
        self,
        codec: str,
        on_frame: Callable[[DecodedFrame], None],
        *,
        on_error: Callable[[], None] | None = None,
        max_queue: int = 8,
    ) -> None:
        self.codec = codec
        self._on_frame = on_frame
        self._on_error = on_error or (lambda: None)
        self._queue: queue.Queue[AssembledFrame | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name=f"{codec}-decoder", daemon=True)
        self.decoded = 0
        self.errors = 0
        self.flushes = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, frame: AssembledFrame) -> bool:
        """Queue a frame; False if the queue overflowed and was flushed instead."""
        try:
            self._queue.put_nowait(frame)
            return True
        except queue.Full:
            self.flushes += 1
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            return False

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ctx = open_decoder(self.codec)
        try:
            while True:
                assembled = self._queue.get()
                if assembled is None:
                    return
                start = time.monotonic()
                try:
                    frames = ctx.decode(av.Packet(assembled.data))
                except av.FFmpegError as exc:
                    self.errors += 1
                    logger.debug("decode error: %s", exc)
                    self._on_error()
                    continue
                for frame in frames:
                    end = time.monotonic()
                    self.decoded += 1
                    code = framecode.read_from_frame(frame)
                    self._on_frame(
                        DecodedFrame(
                            frame=frame,
                            code=code,
                            first_packet_recv=assembled.first_packet_recv,
                            frame_complete=assembled.frame_complete,
                            decode_start=start,
                            decode_end=end,
                            keyframe=assembled.keyframe,
                        )
                    )
        except Exception:
            logger.exception("decoder thread failed")
        finally:
            del ctx
