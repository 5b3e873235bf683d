"""The encoder interface: raw frames in, ``av.Packet`` out, with timing and size.

Encoders are synchronous and CPU-bound; the caller runs them off the event loop
(PyAV releases the GIL inside libavcodec, so a worker thread really runs in
parallel with the loop).
"""

from __future__ import annotations

import abc
import fractions
import time
from dataclasses import dataclass
from typing import ClassVar

import av

# RTP video clock: pts are expressed on it so the sender needs no conversion.
VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
MIN_BITRATE = 100_000


@dataclass(frozen=True)
class EncoderConfig:
    """What every encoder is asked for."""

    width: int
    height: int
    fps: int
    bitrate: int  # bits per second

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(
                f"resolution {self.width}x{self.height}: expected even sizes of at least 16x16"
            )
        if not 1 <= self.fps <= 240:
            raise ValueError(f"fps {self.fps}: expected 1..240")
        if not 50_000 <= self.bitrate <= 500_000_000:
            raise ValueError(f"bitrate {self.bitrate}: expected 50k..500M bits/s")


@dataclass
class EncodedFrame:
    """One encoded picture and what it cost."""

    packet: av.Packet  # type: ignore[type-arg]
    keyframe: bool
    size: int  # bytes
    encode_start: float  # time.monotonic()
    encode_end: float

    @property
    def encode_time(self) -> float:
        return self.encode_end - self.encode_start


class Encoder(abc.ABC):
    """A video encoder behind one interface.

    ``rtp_codec`` is the RTP codec name ("H264", "VP8") that the encoder's
    bitstream is sent as; ``name`` is the registry name.
    """

    name: ClassVar[str]
    rtp_codec: ClassVar[str]

    #: Whether ``set_bitrate`` takes effect on the open encoder (measured per
    #: encoder: ``python -m cloudarcade.bench.encoder_bitrate``).
    live_bitrate: ClassVar[bool] = False
    #: The first frame after a gap in ``pts`` (frames skipped at the source while
    #: the link was full) is encoded at this fraction of the bitrate, where the
    #: encoder changes its bitrate live. The picture moved on while nothing was
    #: sent, so that frame costs more than its share, and it lands on a link
    #: that was just found full. 1 leaves it alone.
    gap_bitrate_factor: ClassVar[float] = 1.0

    def __init__(self, config: EncoderConfig) -> None:
        self.config = config
        self._context = self._open()
        self._frames = 0
        # Written by any thread, applied by the encoding thread between frames.
        self._requested_bitrate = config.bitrate
        self._bitrate = config.bitrate
        self._applied = config.bitrate  # what the codec context has now
        self._last_pts: int | None = None

    @property
    def bitrate(self) -> int:
        """The mean bitrate the encoder is steering for now (bits/s)."""
        return self._bitrate

    def set_bitrate(self, bitrate: float) -> None:
        """Ask for a new mean bitrate from the next frame on; any thread may call it.

        Capped at the configured bitrate, the ceiling the encoder was opened
        with, and floored at ``MIN_BITRATE``. No keyframe, no reopening:
        encoders that cannot change it live (``live_bitrate`` False) ignore it.
        """
        self._requested_bitrate = int(min(max(bitrate, MIN_BITRATE), self.config.bitrate))

    #: The libavcodec encoder to open.
    av_codec: ClassVar[str]

    @abc.abstractmethod
    def options(self) -> dict[str, str]:
        """The encoder's private options (libavcodec AVOptions) for ``self.config``."""

    def _open(self) -> av.VideoCodecContext:
        """Create and open the codec context; raises when the codec won't open."""
        c = self.config
        ctx = av.CodecContext.create(self.av_codec, "w")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width = c.width
        ctx.height = c.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TIME_BASE
        ctx.framerate = fractions.Fraction(c.fps, 1)
        ctx.bit_rate = c.bitrate
        # Long GOP: keyframes come on request (PLI/FIR, a new viewer).
        ctx.gop_size = 10 * c.fps
        ctx.max_b_frames = 0
        ctx.options = self.options()
        ctx.open()
        return ctx

    @property
    def codec_name(self) -> str:
        """The libavcodec encoder actually in use."""
        return str(self._context.codec.name)

    def encode(
        self, frame: av.VideoFrame, *, keyframe: bool = False, pts: int | None = None
    ) -> EncodedFrame | None:
        """Encode one yuv420p frame; ``keyframe`` forces an IDR/key picture.

        ``pts`` (90 kHz) becomes the packet's and so the RTP timestamp; by
        default the frames encoded so far at the configured rate. (libx264's
        rate control goes by the configured rate, not by ``pts``: measured.)
        Returns None when the encoder produced no packet for this frame
        (none of ours buffer, so that means a skipped frame).
        """
        frame.pts = self._frames * VIDEO_CLOCK_RATE // self.config.fps if pts is None else pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        self._frames += 1
        gap = self._last_pts is not None and (
            frame.pts - self._last_pts > 3 * VIDEO_CLOCK_RATE // (2 * self.config.fps)
        )
        self._last_pts = frame.pts
        if self.live_bitrate:
            self._bitrate = self._requested_bitrate
            applied = self._bitrate
            if gap and not keyframe:
                applied = max(int(applied * self.gap_bitrate_factor), MIN_BITRATE)
            if applied != self._applied:
                # FFmpeg's wrappers reconfigure the open encoder when bit_rate changes.
                self._context.bit_rate = applied
                self._applied = applied
        start = time.monotonic()
        packets = self._context.encode(frame)
        end = time.monotonic()
        if not packets:
            return None
        if len(packets) == 1:
            packet = packets[0]
        else:  # never seen with our settings; join to keep one packet per frame
            packet = av.Packet(b"".join(bytes(p) for p in packets))
            packet.pts = packets[0].pts
            packet.dts = packets[0].dts
        packet.time_base = VIDEO_TIME_BASE
        return EncodedFrame(
            packet=packet,
            keyframe=bool(packet.is_keyframe),
            size=packet.size,
            encode_start=start,
            encode_end=end,
        )

    def close(self) -> None:
        """Release the codec context."""
        del self._context
