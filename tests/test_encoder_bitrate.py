"""Changing a running encoder's bitrate: in place, no keyframe, capped at the ceiling."""

from __future__ import annotations

import av
import numpy as np

from cloudarcade.encoder import EncoderConfig, create_encoder


def _moving_noise(width: int, height: int, count: int) -> list[av.VideoFrame]:
    rng = np.random.default_rng(5)
    out = []
    for _ in range(count):
        arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        out.append(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p"))
    return out


def test_x264_bitrate_changes_in_place_without_keyframe() -> None:
    fps = 30
    encoder = create_encoder("libx264", EncoderConfig(320, 192, fps, 2_000_000))
    frames = _moving_noise(320, 192, 60)
    high = [e for f in frames[:30] if (e := encoder.encode(f)) is not None]
    encoder.set_bitrate(400_000)
    low = [e for f in frames[30:] if (e := encoder.encode(f)) is not None]
    assert encoder.bitrate == 400_000
    assert not any(e.keyframe for e in low)
    # Noise needs far more than either rate, so each phase runs at its cap.
    assert np.mean([e.size for e in low[5:]]) < 0.5 * np.mean([e.size for e in high[5:]])
    encoder.set_bitrate(50_000_000)  # above the ceiling it was opened with
    encoder.encode(frames[0])
    assert encoder.bitrate == 2_000_000
