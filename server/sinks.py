"""Where the render thread's frames go: encoded by us, or handed on raw.

A :class:`FrameSink` takes each rendered frame from the render thread
(``put``) and calls ``deliver`` with what the viewers' tracks should get, from
a worker thread. The media stack (:mod:`cloudarcade.stacks`) picks the sink:

- :class:`EncoderSink` (tuned): one-slot mailbox (latest wins, an unencoded
  older frame is dropped and counted) → encoder thread → ``deliver`` with the
  frame's ``encoded`` set;
- :class:`RawSink` (stock): ``deliver`` at once with the raw frame, for a
  track that lets aiortc encode.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

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
    are dropped before encoding (never a keyframe that was asked for).
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
        encoder = self.encoder
        if encoder is not None:
            encoder.set_bitrate(bitrate)

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

    def _encode_loop(self) -> None:
        assert self.encoder is not None
        try:
            while True:
                frame = self._mailbox.get()
                if frame is None:
                    break
                keyframe = self._keyframe_requested.is_set()
                if not keyframe and self._skip_frame():
                    # The link is full: a frame not encoded costs the decoder
                    # nothing, one queued behind the backlog costs latency.
                    self._on_drop("cc_skip")
                    continue
                self._keyframe_requested.clear()
                encoded = self.encoder.encode(frame.frame, keyframe=keyframe)
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
