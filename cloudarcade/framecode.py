"""Frame identity code: ``frame_id`` and the last applied ``input_seq`` drawn as pixel blocks.

The server draws the code into the top band of every frame after the game renders;
receivers read it back from the decoded luma plane, so a frame can be matched to
its send-side timestamps and to the input it answers, whatever the transport did.

Layout: one bit per 16x16 block, aligned to the 16-px macroblock grid from the
top-left corner, row-major, ``width // 16`` blocks per row and as many rows as the
80 bits need (:func:`band_height`). A bit is a flat block of black (0) or white (1):
flat macroblocks at the luma extremes survive even a starved H.264 encoder, and a
reader that samples only the centre 8x8 of each block ignores the blurred edges.
When the check fails and at most three blocks are near mid-grey, the reader tries
both values for those blocks (erasure decoding, still checked by the CRC).

Payload, most significant bit first: 32 bits frame_id, 32 bits input_seq, 16 bits
CRC-16/CCITT-FALSE of those 8 bytes, XORed with a constant so that an all-black or
all-white band never passes the check. A read whose check fails returns ``None``
rather than a wrong number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import av
    import pygame

logger = logging.getLogger(__name__)

BLOCK: Final = 16
PAYLOAD_BITS: Final = 32 + 32 + 16
MIN_WIDTH: Final = 320
# Blocks whose centre mean is within this of 128 count as unknown (erasures) when the
# plain read fails its check; the MAX_ERASURES least certain are resolved, and only
# when no more than MAX_DOUBTFUL blocks are uncertain.
ERASURE_MARGIN: Final = 48.0
MAX_ERASURES: Final = 3
MAX_DOUBTFUL: Final = 16
_CRC_XOR: Final = 0x5A3C
_BLACK: Final = (0, 0, 0)
_WHITE: Final = (255, 255, 255)
# What swscale makes of RGB black and white in yuv420p (limited range), and no colour.
_Y_BLACK: Final = 16
_Y_WHITE: Final = 235
_NO_CHROMA: Final = 128
_MASK32: Final = 0xFFFFFFFF
# 8-bit formats whose plane 0 is the luma plane, one byte per pixel.
_LUMA_FORMATS: Final = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
)


@dataclass(frozen=True)
class FrameCode:
    """What a frame's code says: its id and the last input sequence number applied to it."""

    frame_id: int
    input_seq: int


def _blocks_per_row(width: int) -> int:
    if width < MIN_WIDTH:
        raise ValueError(f"frame code needs a frame at least {MIN_WIDTH} px wide, got {width}")
    return width // BLOCK


def band_height(width: int) -> int:
    """Pixel rows the code takes at the top of a frame ``width`` px wide (a multiple of 16)."""
    per_row = _blocks_per_row(width)
    return -(-PAYLOAD_BITS // per_row) * BLOCK


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _check(frame_id: int, input_seq: int) -> int:
    return crc16(frame_id.to_bytes(4, "big") + input_seq.to_bytes(4, "big")) ^ _CRC_XOR


def encode_bits(frame_id: int, input_seq: int) -> list[int]:
    """The 80 payload bits, most significant first."""
    for name, value in (("frame_id", frame_id), ("input_seq", input_seq)):
        if not 0 <= value <= _MASK32:
            raise ValueError(f"{name} must be 0..2**32-1, got {value}")
    word = (frame_id << 48) | (input_seq << 16) | _check(frame_id, input_seq)
    return [(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


def decode_bits(bits: list[int] | npt.NDArray[np.bool_]) -> FrameCode | None:
    """The code in 80 bits, or ``None`` if the check does not match."""
    word = 0
    for bit in bits[:PAYLOAD_BITS]:
        word = (word << 1) | int(bit)
    frame_id = word >> 48
    input_seq = (word >> 16) & _MASK32
    if word & 0xFFFF != _check(frame_id, input_seq):
        return None
    return FrameCode(frame_id, input_seq)


def write(surface: pygame.Surface, frame_id: int, input_seq: int) -> None:
    """Draw the code over the top :func:`band_height` rows of ``surface``."""
    width = surface.get_width()
    per_row = _blocks_per_row(width)
    bits = encode_bits(frame_id, input_seq)
    # One black fill for the whole band (spare blocks and the ragged right edge too),
    # then one fill per white bit: about 40 small fills, no per-pixel work.
    surface.fill(_BLACK, (0, 0, width, band_height(width)))
    for i, bit in enumerate(bits):
        if bit:
            row, col = divmod(i, per_row)
            surface.fill(_WHITE, (col * BLOCK, row * BLOCK, BLOCK, BLOCK))


def write_frame(frame: av.VideoFrame, frame_id: int, input_seq: int) -> None:
    """Draw the code over the top :func:`band_height` rows of a yuv420p ``frame``.

    For a frame scaled after rendering (the ladder's lower rungs,
    :mod:`cloudarcade.server.ladder`): the layout is that of the frame's own
    width, as the readers expect, and the band covers the scaled-down band of
    the full-size frame (a narrower frame's band is never shorter).
    """
    if frame.format.name != "yuv420p":
        raise ValueError(f"expected a yuv420p frame, got {frame.format.name}")
    width = frame.width
    per_row = _blocks_per_row(width)
    rows = band_height(width)
    bits = np.zeros(rows // BLOCK * per_row, np.bool_)
    bits[:PAYLOAD_BITS] = encode_bits(frame_id, input_seq)
    blocks = bits.reshape(rows // BLOCK, per_row).repeat(BLOCK, 0).repeat(BLOCK, 1)
    luma = _plane_view(frame, 0)
    luma[:rows, :width] = _Y_BLACK
    luma[:rows, : per_row * BLOCK] = np.where(blocks, _Y_WHITE, _Y_BLACK)
    for index in (1, 2):
        chroma = _plane_view(frame, index)
        chroma[: rows // 2, : frame.planes[index].width] = _NO_CHROMA


def _plane_view(frame: av.VideoFrame, index: int) -> npt.NDArray[np.uint8]:
    plane = frame.planes[index]
    buf = np.frombuffer(memoryview(plane), np.uint8)
    return buf[: plane.height * plane.line_size].reshape(plane.height, plane.line_size)


def read(y_plane: npt.NDArray[np.uint8], width: int | None = None) -> FrameCode | None:
    """Read the code from a decoded luma plane (2-D uint8, rows x stride).

    ``width`` is the frame width when ``y_plane`` is wider than the frame (a padded
    line size); by default the plane's own width. Only the band is touched: the mean
    of each block's central 8x8 pixels, thresholded at 128, then the CRC is checked
    (with the erasure retry described in the module docstring). ``None`` means the
    band holds no valid code.
    """
    if y_plane.ndim != 2:
        raise ValueError(f"expected a 2-D luma plane, got shape {y_plane.shape}")
    width = y_plane.shape[1] if width is None else width
    per_row = _blocks_per_row(width)
    rows = band_height(width) // BLOCK
    if y_plane.shape[0] < rows * BLOCK or y_plane.shape[1] < per_row * BLOCK:
        raise ValueError(f"luma plane {y_plane.shape} is smaller than the code band")
    band = y_plane[: rows * BLOCK, : per_row * BLOCK]
    # Splitting both axes into (block, pixel) is a view on any strided plane: no copy.
    centres = band.reshape(rows, BLOCK, per_row, BLOCK)[:, 4:12, :, 4:12]
    means = centres.mean(axis=(1, 3), dtype=np.float32).reshape(-1)[:PAYLOAD_BITS]
    bits = means >= 128.0
    code = decode_bits(bits)
    if code is not None:
        return code
    # A starved encoder (QP 51 on a noisy frame) can leave a flipped block half-way
    # between black and white. Treat the (at most 3) blocks nearest mid-grey as
    # erasures and try both values for each: any two candidates differ in <= 3 bits
    # and the CRC's Hamming distance is 4, so at most one of them can pass.
    # A band with many grey blocks is not a damaged code but something else
    # (no code, concealment garbage): guessing there would only invite false reads.
    margins = np.abs(means - 128.0)
    if np.count_nonzero(margins < ERASURE_MARGIN) > MAX_DOUBTFUL:
        return None
    doubtful = [
        int(i)
        for i in np.argsort(margins, kind="stable")[:MAX_ERASURES]
        if margins[i] < ERASURE_MARGIN
    ]
    if not doubtful:
        return None
    for pattern in range(1, 1 << len(doubtful)):
        candidate = bits.copy()
        for j, index in enumerate(doubtful):
            if pattern >> j & 1:
                candidate[index] = not candidate[index]
        code = decode_bits(candidate)
        if code is not None:
            logger.debug("frame code read with %d erased blocks", len(doubtful))
            return code
    return None


def luma_view(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """Plane 0 of a planar YUV frame as a (height x line_size) uint8 view, without conversion."""
    name = frame.format.name
    if name not in _LUMA_FORMATS:
        raise ValueError(f"expected a planar YUV frame (e.g. yuv420p), got {name}")
    return _plane_view(frame, 0)


def read_from_frame(frame: av.VideoFrame) -> FrameCode | None:
    """Read the code from a decoded ``av.VideoFrame`` (yuv420p and other 8-bit YUV formats)."""
    return read(luma_view(frame), frame.width)
