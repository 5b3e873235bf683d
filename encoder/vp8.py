"""VP8 through libvpx in real-time mode."""

from __future__ import annotations

from .base import Encoder


class Vp8Encoder(Encoder):
    """libvpx VP8: realtime deadline, fastest speed, no lag, error resilient."""

    name = "vp8"
    rtp_codec = "VP8"
    av_codec = "libvpx"

    def options(self) -> dict[str, str]:
        return {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "error-resilient": "1",
            "static-thresh": "0",
            "undershoot-pct": "95",
            # Rate-control buffer in ms: small, like x264's one-frame VBV.
            "buf-initial-sz": "500",
            "buf-optimal-sz": "600",
            "buf-sz": "1000",
            "threads": "2",
        }
