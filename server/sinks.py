"""Where the render thread's frames go: encoded by us, or handed on raw.

A :class:`FrameSink` takes each rendered frame from the render thread
(``put``) and calls ``deliver`` with what the viewers' tracks should get, from
a worker thread. The media stack (:mod:`cloudarcade.stacks`) picks the sink:

- :class:`EncoderSink` (tuned): one-slot mailbox (latest wins, an unencoded
  older frame is dropped and counted) → encoder thread → ``deliver`` with the
  frame's ``encoded`` set; a frame of another size or rate (the ladder's rung,
  :mod:`cloudarcade.server.ladder`) reopens the encoder for it;
- :class:`RawSink` (stock): ``deliver`` at once with the raw frame, for a
  track that lets aiortc encode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from cloudarcade.encoder import EncodedFrame, Encoder
from cloudarcade.server.pipeline import Mailbox, RenderedFrame

logger = logging.getLogger(__name__)

Deliver = Callable[[RenderedFrame], None]
OnDrop = Callable[[str], None]


class FrameSink:
    """Takes rendered frames from the render thread; ``deliver`` gets what viewers send."""

    def __init__(self, deliver: Deliver, on_drop: OnDrop) -> None:
        self._deliver = deliver
        self._on_drop = on_drop

    @property
    def stats(self) -> dict[str, int]:
        return {"encoded": 0}

    def put(self, frame: RenderedFrame) -> None:
        """Called on the render thread for every rendered frame."""
        self._deliver(frame)

    def request_keyframe(self) -> None:
        """The next frame out should be a keyframe (no-op when someone else encodes)."""

    def set_bitrate(self, bitrate: float) -> None:
        """Steer the encoder to ``bitrate`` bits/s (no-op when someone else encodes)."""

    @property
    def adapts(self) -> bool:
        """Whether the bitrate and the size can follow the link (our encoder, live bitrate)."""
        return False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        """Stop and release; safe to call twice."""


class RawSink(FrameSink):
    """Hands raw frames on as they are rendered; the track's owner encodes them."""


class EncoderSink(FrameSink):
    """Encodes on its own thread; a frame that arrives while it is busy replaces the waiting one.

    ``on_encoded`` sees each encoded frame on the encoder thread (for metrics)
    before ``deliver``. While ``skip_frame()`` says the link is full, frames
    are dropped before encoding (never a keyframe that was asked for). A
    frame whose size or rate (``timing.fps``) differs from the encoder's
    closes it and opens one of the same class for it; that frame is a
    keyframe.
    """

    def __init__(
        self,
        encoder: Encoder,
        deliver: Deliver,
        on_drop: OnDrop,
        on_encoded: Callable[[EncodedFrame], None] | None = None,
        *,
        skip_frame: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(deliver, on_drop)
        self.encoder: Encoder | None = encoder
        self._bitrate: float | None = None
        self._skip_frame = skip_frame or (lambda: False)
        self._on_encoded = on_encoded or (lambda encoded: None)
        self._mailbox = Mailbox()
        self._keyframe_requested = threading.Event()
        self._keyframe_requested.set()
        self._thread: threading.Thread | None = None
        self._encoded = 0

    @property
    def stats(self) -> dict[str, int]:
        return {"encoded": self._encoded}

    def put(self, frame: RenderedFrame) -> None:
        if self._mailbox.put(frame) is not None:
            self._on_drop("encode_busy")

    def request_keyframe(self) -> None:
        self._keyframe_requested.set()

    def set_bitrate(self, bitrate: float) -> None:
        # Remembered first: an encoder opened meanwhile (_fit) takes it from here.
        self._bitrate = bitrate
        encoder = self.encoder
        if encoder is not None:
            encoder.set_bitrate(bitrate)

    @property
    def adapts(self) -> bool:
        return self.encoder is not None and self.encoder.live_bitrate

    def start(self) -> None:
        self._thread = threading.Thread(target=self._encode_loop, name="encode", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._mailbox.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                logger.error("encoder thread did not stop")
            self._thread = None
        if self.encoder is not None:
            self.encoder.close()
            self.encoder = None

    def _fit(self, frame: RenderedFrame) -> bool:
        """Reopen the encoder if ``frame`` has another size or rate; True if it did."""
        encoder = self.encoder
        assert encoder is not None
        config = encoder.config
        size = (frame.frame.width, frame.frame.height, frame.timing.fps or config.fps)
        if size == (config.width, config.height, config.fps):
            return False
        start = time.monotonic()
        encoder.close()
        # The configured bitrate stays the ceiling (the VBV); the target follows.
        new = type(encoder)(replace(config, width=size[0], height=size[1], fps=size[2]))
        self.encoder = new
        if self._bitrate is not None:
            new.set_bitrate(self._bitrate)
        seconds = time.monotonic() - start
        logger.info("encoder reopened at %dx%d@%d in %.1f ms", *size, seconds * 1000)
        return True

    def _encode_loop(self) -> None:
        try:
            while True:
                frame = self._mailbox.get()
                if frame is None:
                    break
                keyframe = self._keyframe_requested.is_set()
                if self._fit(frame):
                    keyframe = True
                elif not keyframe and self._skip_frame():
                    # The link is full: a frame not encoded costs the decoder
                    # nothing, one queued behind the backlog costs latency.
                    self._on_drop("cc_skip")
                    continue
                self._keyframe_requested.clear()
                encoder = self.encoder
                assert encoder is not None
                encoded = encoder.encode(frame.frame, keyframe=keyframe, pts=frame.pts)
                if encoded is None:
                    self._on_drop("encode_skip")
                    continue
                timing = frame.timing
                timing.encode_start = encoded.encode_start
                timing.encode_end = encoded.encode_end
                timing.size_bytes = encoded.size
                timing.keyframe = encoded.keyframe
                frame.encoded = encoded
                self._encoded += 1
                self._on_encoded(encoded)
                self._deliver(frame)
        except Exception:
            logger.exception("encode loop failed")
