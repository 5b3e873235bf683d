"""H.264 through libx264, tuned for latency rather than efficiency."""

from __future__ import annotations

from .base import Encoder


class X264Encoder(Encoder):
    """libx264: ultrafast, zerolatency, no B-frames, CBR with a one-frame VBV.

    The VBV of one frame interval keeps every frame near the mean size, so no
    frame queues behind a big one on a rate-limited link. No ``nal-hrd=cbr``:
    that pads every frame with filler up to the budget, which spends the link's
    capacity on nothing. The GOP is long (10 s); keyframes come on request.
    ``forced-idr`` makes a requested I picture an IDR, which a decoder can
    start from; ``repeat-headers`` puts SPS/PPS before every keyframe so a
    viewer who joins late can start there.

    The VBV is set through the codec context's generic ``maxrate``/``bufsize``
    at the configured (highest) rate: then FFmpeg's wrapper hands a new
    ``bit_rate`` to ``x264_encoder_reconfig`` between frames, with no
    keyframe. Set through ``x264-params`` instead, a new ``bit_rate`` is
    silently ignored (measured, PyAV 18; see docs/congestion.md).
    """

    name = "libx264"
    rtp_codec = "H264"
    av_codec = "libx264"
    live_bitrate = True
    # After 5 frames skipped on terrain (720p60, 8 -> 2.2 Mbit/s) the next frame
    # was 14.6 kB against a 4.6 kB budget; at a quarter of the rate, 10.2 kB, and
    # the frames after it as without. Measured with
    # `python -m cloudarcade.bench.encoder_bitrate --to 2200000 --gap 5`.
    gap_bitrate_factor = 0.25

    def options(self) -> dict[str, str]:
        c = self.config
        kbps = c.bitrate // 1000
        vbv_kbit = max(kbps // c.fps, 1)
        return {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            "maxrate": f"{kbps}k",
            "bufsize": f"{vbv_kbit}k",
            "x264-params": (
                f"keyint={10 * c.fps}:min-keyint={c.fps}:scenecut=0:repeat-headers=1"
            ),
        }
