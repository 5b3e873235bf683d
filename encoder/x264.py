"""H.264 through libx264, tuned for latency rather than efficiency."""

from __future__ import annotations

import fractions

import av

from .base import VIDEO_TIME_BASE, Encoder


class X264Encoder(Encoder):
    """libx264: ultrafast, zerolatency, no B-frames, CBR with a one-frame VBV.

    The VBV of one frame interval keeps every frame near the mean size, so no
    frame queues behind a big one on a rate-limited link. No ``nal-hrd=cbr``:
    that pads every frame with filler up to the budget, which spends the link's
    capacity on nothing. The GOP is long
    (10 s); keyframes come on request (PLI/FIR, a new viewer). ``forced-idr``
    makes a requested I picture an IDR, which a decoder can start from.
    """

    name = "libx264"
    rtp_codec = "H264"

    def _open(self) -> av.VideoCodecContext:
        c = self.config
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width = c.width
        ctx.height = c.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TIME_BASE
        ctx.framerate = fractions.Fraction(c.fps, 1)
        ctx.bit_rate = c.bitrate
        ctx.gop_size = 10 * c.fps
        ctx.max_b_frames = 0
        kbps = c.bitrate // 1000
        vbv_kbit = max(kbps // c.fps, 1)
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            "x264-params": (
                f"vbv-maxrate={kbps}:vbv-bufsize={vbv_kbit}"
                f":keyint={10 * c.fps}:min-keyint={c.fps}:scenecut=0:repeat-headers=1"
            ),
        }
        ctx.open()
        return ctx
