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


def test_x264_spends_less_on_the_frame_after_a_gap() -> None:
    fps = 30
    config = EncoderConfig(320, 192, fps, 2_000_000)
    frames = _moving_noise(320, 192, 40)
    step = 90_000 // fps

    def after_gap(factor: float) -> list[int]:
        encoder = create_encoder("libx264", config)
        encoder.gap_bitrate_factor = factor  # type: ignore[misc]  # this instance only
        sizes = []
        for i, frame in enumerate(frames[:30]):
            encoder.encode(frame, pts=i * step)
        encoder.set_bitrate(1_000_000)
        # Five frames skipped at the source: the pts jumps by six intervals.
        for i, frame in enumerate(frames[30:34], start=35):
            encoded = encoder.encode(frame, pts=i * step)
            assert encoded is not None
            sizes.append(encoded.size)
        assert encoder.bitrate == 1_000_000  # the kick is for one frame, not the target
        return sizes

    kicked, plain = after_gap(0.25), after_gap(1.0)
    assert kicked[0] < 0.7 * plain[0]
    # Only the first frame after the gap: the rate is back for the next ones.
    assert kicked[2] > 0.7 * plain[2]
