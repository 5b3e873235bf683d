"""VP8 through libvpx in real-time mode."""

from __future__ import annotations

import fractions

import av

from .base import VIDEO_TIME_BASE, Encoder


class Vp8Encoder(Encoder):
    """libvpx VP8: realtime deadline, fastest speed, no lag, error resilient."""

    name = "vp8"
    rtp_codec = "VP8"

    def _open(self) -> av.VideoCodecContext:
        c = self.config
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.width = c.width
        ctx.height = c.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TIME_BASE
        ctx.framerate = fractions.Fraction(c.fps, 1)
        ctx.bit_rate = c.bitrate
        ctx.gop_size = 10 * c.fps
        ctx.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "error-resilient": "1",
            "static-thresh": "0",
            "undershoot-pct": "95",
            "buf-initial-sz": "500",
            "buf-optimal-sz": "600",
            "buf-sz": "1000",
            "threads": "2",
        }
        ctx.open()
        return ctx
