"""H.264 on NVIDIA's NVENC, when the machine has one that opens."""

from __future__ import annotations

import fractions

import av

from .base import VIDEO_TIME_BASE, Encoder


class NvencEncoder(Encoder):
    """h264_nvenc: low-latency preset, CBR, no B-frames.

    PyAV's wheels carry h264_nvenc, but it only opens on a GPU with NVENC;
    on others ``avcodec_open2`` fails and the registry falls back to libx264.
    """

    name = "h264_nvenc"
    rtp_codec = "H264"

    def _open(self) -> av.VideoCodecContext:
        c = self.config
        ctx = av.CodecContext.create("h264_nvenc", "w")
        ctx.width = c.width
        ctx.height = c.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TIME_BASE
        ctx.framerate = fractions.Fraction(c.fps, 1)
        ctx.bit_rate = c.bitrate
        ctx.gop_size = 10 * c.fps
        ctx.max_b_frames = 0
        ctx.options = {
            "preset": "p1",
            "tune": "ull",
            "rc": "cbr",
            "zerolatency": "1",
            "forced-idr": "1",
            "profile": "baseline",
        }
        ctx.open()
        return ctx
