"""Video encoders behind one interface, created by name.

``create_encoder("h264", config)`` picks NVENC when it opens on this machine
and otherwise libx264, saying so in the log.
"""

from __future__ import annotations

import logging

from .base import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, EncodedFrame, Encoder, EncoderConfig
from .nvenc import NvencEncoder
from .vp8 import Vp8Encoder
from .x264 import X264Encoder

logger = logging.getLogger(__name__)

__all__ = [
    "CODECS",
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "EncodedFrame",
    "Encoder",
    "EncoderConfig",
    "create_encoder",
    "rtp_codec_for",
]

_CLASSES: dict[str, type[Encoder]] = {
    "libx264": X264Encoder,
    "h264_nvenc": NvencEncoder,
    "vp8": Vp8Encoder,
}
# "h264" is the automatic choice: NVENC if it opens, else libx264.
CODECS = ("h264", "libx264", "h264_nvenc", "vp8")

_nvenc_failure: str | None = None


def rtp_codec_for(name: str) -> str:
    """The RTP codec ("H264" or "VP8") that encoder ``name`` produces."""
    if name == "h264":
        return "H264"
    try:
        return _CLASSES[name].rtp_codec
    except KeyError:
        raise ValueError(unknown_codec_message(name)) from None


def unknown_codec_message(name: str) -> str:
    return f"unknown codec {name!r}; known codecs: {', '.join(CODECS)}"


def create_encoder(name: str, config: EncoderConfig) -> Encoder:
    """Create the encoder registered as ``name`` for ``config``.

    ``h264`` and ``h264_nvenc`` try NVENC first and fall back to libx264 with
    one log line giving the reason.
    """
    global _nvenc_failure
    if name not in CODECS:
        raise ValueError(unknown_codec_message(name))
    if name in ("h264", "h264_nvenc"):
        if _nvenc_failure is None:
            try:
                return NvencEncoder(config)
            except Exception as exc:  # av raises various FFmpeg errors here
                _nvenc_failure = f"{type(exc).__name__}: {exc}"
                level = logging.WARNING if name == "h264_nvenc" else logging.INFO
                logger.log(level, "h264_nvenc did not open (%s); using libx264", _nvenc_failure)
        return X264Encoder(config)
    return _CLASSES[name](config)
