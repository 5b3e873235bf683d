"""Encoders: output decodes, keyframes on request, clear errors for bad names."""

from __future__ import annotations

import av
import numpy as np
import pytest

from cloudarcade.encoder import CODECS, EncoderConfig, create_encoder, rtp_codec_for


def _frames(width: int, height: int, count: int) -> list[av.VideoFrame]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = []
    for i in range(count):
        arr = np.roll(base, 8 * i, axis=1)
        out.append(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p"))
    return out


@pytest.mark.parametrize("name", ["h264", "vp8"])
def test_output_decodes_and_keyframe_on_request(name: str) -> None:
    encoder = create_encoder(name, EncoderConfig(320, 192, 30, 1_000_000))
    decoder = av.CodecContext.create(rtp_codec_for(name).lower(), "r")
    keyframes = []
    decoded = 0
    for i, frame in enumerate(_frames(320, 192, 20)):
        encoded = encoder.encode(frame, keyframe=(i == 12))
        assert encoded is not None
        assert encoded.size == encoded.packet.size > 0
        assert encoded.encode_end >= encoded.encode_start
        keyframes.append(encoded.keyframe)
        for picture in decoder.decode(encoded.packet):
            assert (picture.width, picture.height) == (320, 192)
            decoded += 1
    assert decoded == 20
    # The first frame and the requested one are keyframes, the others are not.
    assert [i for i, k in enumerate(keyframes) if k] == [0, 12]


def test_h264_respects_one_frame_vbv() -> None:
    bitrate, fps = 1_000_000, 30
    encoder = create_encoder("libx264", EncoderConfig(640, 352, fps, bitrate))
    sizes = [e.size for f in _frames(640, 352, 30) if (e := encoder.encode(f)) is not None]
    budget = bitrate / 8 / fps
    # P-frames stay near the per-frame budget (x264's VBV is approximate).
    assert np.median(sizes[1:]) < 2 * budget


def test_unknown_codec_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known codecs: " + ", ".join(CODECS)):
        create_encoder("h265", EncoderConfig(320, 192, 30, 1_000_000))


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="fps 0"):
        EncoderConfig(320, 192, 0, 1_000_000)
    with pytest.raises(ValueError, match="resolution 321x192"):
        EncoderConfig(321, 192, 30, 1_000_000)
