"""Frame identity code: exact read-back after real libx264 encodes, None on corruption."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pygame
import pytest

from cloudarcade import framecode
from cloudarcade.framecode import FrameCode, band_height, read, read_from_frame, write


def _to_yuv(surface: pygame.Surface) -> av.VideoFrame:
    width, height = surface.get_size()
    bgra = np.frombuffer(surface.get_buffer(), np.uint8).reshape(height, surface.get_pitch())
    bgra = bgra[:, : width * 4].reshape(height, width, 4)
    return av.VideoFrame.from_ndarray(bgra, format="bgra").reformat(format="yuv420p")


def _busy(surface: pygame.Surface, rng: np.random.Generator) -> None:
    """Swarm-like noise: 4x4-px random colour cells, new every frame (worst case for x264)."""
    width, height = surface.get_size()
    cells = rng.integers(0, 256, (width // 4, height // 4, 3), dtype=np.uint8)
    pygame.surfarray.pixels3d(surface)[:] = cells.repeat(4, 0).repeat(4, 1)


def test_band_height() -> None:
    assert band_height(320) == 64
    assert band_height(640) == 32
    assert band_height(1280) == 16
    assert band_height(1920) == 16
    assert band_height(1000) == 32
    with pytest.raises(ValueError, match="at least 320"):
        band_height(319)


def test_bits_round_trip() -> None:
    for frame_id, seq in [(0, 0), (1, 2), (2**32 - 1, 2**32 - 1), (123456789, 987654321)]:
        bits = framecode.encode_bits(frame_id, seq)
        assert len(bits) == framecode.PAYLOAD_BITS
        assert framecode.decode_bits(bits) == FrameCode(frame_id, seq)
    with pytest.raises(ValueError, match="frame_id"):
        framecode.encode_bits(2**32, 0)


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (1000, 562), (1280, 720)])
def test_write_read_lossless(size: tuple[int, int]) -> None:
    surface = pygame.Surface(size, 0, 32)
    surface.fill((40, 200, 90))
    write(surface, 4242, 77)
    frame = _to_yuv(surface)
    assert read_from_frame(frame) == FrameCode(4242, 77)
    # Only the band was drawn.
    assert surface.get_at((size[0] - 1, band_height(size[0]))) == (40, 200, 90, 255)


def test_read_with_wider_stride() -> None:
    surface = pygame.Surface((656, 368), 0, 32)
    write(surface, 5, 6)
    y = framecode.luma_view(_to_yuv(surface))
    padded = np.full((368, 704), 255, np.uint8)
    padded[:, :656] = y
    assert read(padded, 656) == FrameCode(5, 6)
    # A view cropped to the frame width works as well as the padded plane.
    assert read(padded[:, :656]) == FrameCode(5, 6)


def _encode_decode(width: int, height: int, bit_rate: int, frames: int) -> None:
    rng = np.random.default_rng(7)
    surface = pygame.Surface((width, height), 0, 32)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bit_rate
    encoder.time_base = Fraction(1, 60)
    encoder.framerate = Fraction(60)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    decoder = av.CodecContext.create("h264", "r")
    sent: list[FrameCode] = []
    got: list[FrameCode | None] = []
    for i in range(frames):
        _busy(surface, rng)
        code = FrameCode(int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)))
        write(surface, code.frame_id, code.input_seq)
        sent.append(code)
        frame = _to_yuv(surface)
        frame.pts = i
        for packet in encoder.encode(frame):
            got.extend(read_from_frame(decoded) for decoded in decoder.decode(packet))
    for packet in encoder.encode(None):
        got.extend(read_from_frame(decoded) for decoded in decoder.decode(packet))
    assert got == sent


def test_survives_x264_1mbps_360p() -> None:
    _encode_decode(640, 360, 1_000_000, 60)


def test_survives_x264_8mbps_720p() -> None:
    _encode_decode(1280, 720, 8_000_000, 30)


def _luma(width: int, height: int, frame_id: int, seq: int) -> npt.NDArray[np.uint8]:
    surface = pygame.Surface((width, height), 0, 32)
    surface.fill((128, 128, 128))
    write(surface, frame_id, seq)
    return framecode.luma_view(_to_yuv(surface)).copy()


def test_corrupt_blocks_read_as_none() -> None:
    rng = np.random.default_rng(3)
    y = _luma(640, 360, 0xDEADBEEF, 31337)
    assert read(y) == FrameCode(0xDEADBEEF, 31337)
    per_row = 640 // 16
    # CRC-16/CCITT catches every error of up to 3 bits in a payload this short.
    for _ in range(200):
        bad = y.copy()
        flips = rng.choice(framecode.PAYLOAD_BITS, size=int(rng.integers(1, 4)), replace=False)
        for bit in flips:
            row, col = divmod(int(bit), per_row)
            block = bad[row * 16 : row * 16 + 16, col * 16 : col * 16 + 16]
            block[:] = 255 - block
        assert read(bad) is None


def _block(y: npt.NDArray[np.uint8], bit: int) -> npt.NDArray[np.uint8]:
    row, col = divmod(bit, y.shape[1] // 16)
    return y[row * 16 : row * 16 + 16, col * 16 : col * 16 + 16]


def test_up_to_three_grey_blocks_are_resolved() -> None:
    y = _luma(640, 360, 1234, 5678)
    bits = framecode.encode_bits(1234, 5678)
    # Blocks a starved encoder left half-way, on the wrong side of 128, each by
    # ``off`` grey levels: one, then two, then three such blocks still read.
    for count, (bit, off) in enumerate(((3, 12), (40, 30), (79, 45)), start=1):
        wrong = 128 + off if not bits[bit] else 128 - off
        _block(y, bit)[:] = wrong
        assert read(y) == FrameCode(1234, 5678), (count, bit, off)


def test_noise_never_reads_as_a_code() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        means = rng.integers(0, 256, (2, 40), dtype=np.uint8)
        y = means.repeat(16, 0).repeat(16, 1)
        assert read(y) is None


def test_uncoded_frames_read_as_none() -> None:
    for value in (0, 16, 128, 235, 255):
        assert read(np.full((360, 640), value, np.uint8)) is None


def test_read_from_frame_rejects_rgb() -> None:
    frame = av.VideoFrame(640, 360, "rgb24")
    with pytest.raises(ValueError, match="planar YUV"):
        read_from_frame(frame)


@pytest.mark.parametrize("size", [(960, 540), (640, 360)])
def test_a_scaled_down_frame_gets_a_code_of_its_own_width(size: tuple[int, int]) -> None:
    """The ladder's lower rungs scale the rendered frame, then draw the code again."""
    surface = pygame.Surface((1280, 720), 0, 32)
    surface.fill((40, 200, 90))
    write(surface, 1, 2)  # the full-size code: scaled, no longer readable
    frame = _to_yuv(surface).reformat(width=size[0], height=size[1], format="yuv420p")
    framecode.write_frame(frame, 4242, 77)
    assert read_from_frame(frame) == FrameCode(4242, 77)
    luma = framecode.luma_view(frame)
    # It covers the old band and only that: the row below is the picture's.
    band = band_height(size[0])
    assert band > band_height(1280) * size[1] // 720
    assert list(luma[band, : size[0]]) == [luma[size[1] - 1, 0]] * size[0]
    with pytest.raises(ValueError, match="yuv420p"):
        framecode.write_frame(frame.reformat(format="rgb24"), 1, 1)
