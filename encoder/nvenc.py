"""H.264 on NVIDIA's NVENC, when the machine has one that opens."""

from __future__ import annotations

from .base import Encoder


class NvencEncoder(Encoder):
    """h264_nvenc: low-latency preset, CBR, no B-frames.

    PyAV's wheels carry h264_nvenc, but it only opens on a GPU with NVENC;
    on others ``avcodec_open2`` fails and the registry falls back to libx264.
    """

    name = "h264_nvenc"
    rtp_codec = "H264"
    av_codec = "h264_nvenc"

    def options(self) -> dict[str, str]:
        return {
            "preset": "p1",
            "tune": "ull",
            "rc": "cbr",
            "zerolatency": "1",
            "forced-idr": "1",
            "profile": "baseline",
        }
