"""What each rung of the resolution/frame-rate ladder costs and buys at one bitrate.

    python -m cloudarcade.bench.ladder_rungs --game terrain --bitrate 2.2M

Renders ``--game`` at the configured size and rate, and for every rung of its
ladder (:func:`cloudarcade.server.ladder.build_rungs`) encodes the same
seconds of play at ``--bitrate`` the way the server does (scaled in the
conversion pass, every ``every``-th tick, the encoder opened at the rung with
the configured bitrate as its ceiling), decodes, scales every 5th decoded frame
back to the full size and compares its luma with the full-size source. It prints, per
rung: bits per pixel per frame, PSNR and SSIM against the full-size source
(what a viewer whose window is that size sees), the mean frame size, and what
switching to the rung costs: the time to close and reopen the encoder and the
size and encode time of its first (key) frame. A benchmark command: it prints
figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import av
import numpy as np
import numpy.typing as npt
import pygame

from cloudarcade import framecode
from cloudarcade.bench import rendered
from cloudarcade.bench.analysis import psnr, ssim
from cloudarcade.encoder import EncoderConfig, create_encoder
from cloudarcade.server.ladder import Rung, build_rungs
from cloudarcade.server.options import parse_bitrate, parse_resolution
from cloudarcade.server.pipeline import SurfaceConverter


def _luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    return framecode.luma_view(frame)[:, : frame.width].copy()


def _measure(rung: Rung, surfaces: list[pygame.Surface], full: tuple[int, int], fps: int,
             ceiling: int, bitrate: int, codec: str) -> str:
    converter = SurfaceConverter(*full)
    old = create_encoder(codec, EncoderConfig(full[0], full[1], fps, ceiling))
    start = time.perf_counter()
    old.close()
    encoder = create_encoder(codec, EncoderConfig(rung.width, rung.height, rung.fps, ceiling))
    encoder.set_bitrate(bitrate)
    reopen_ms = (time.perf_counter() - start) * 1000
    decoder = av.CodecContext.create("h264", "r")
    sizes: list[int] = []
    scores: list[tuple[float, float]] = []
    first: tuple[int, float] | None = None
    for tick, surface in enumerate(surfaces):
        if tick % rung.every:
            continue
        frame = converter.convert(surface, (rung.width, rung.height))
        encoded = encoder.encode(frame, keyframe=first is None)
        if encoded is None:
            continue
        if first is None:
            first = (encoded.size, encoded.encode_time * 1000)
        sizes.append(encoded.size)
        for decoded in decoder.decode(encoded.packet):
            # Not the first second (rate control settles); every 5th frame after it.
            if len(sizes) <= rung.fps or len(sizes) % 5:
                continue
            shown = decoded.reformat(width=full[0], height=full[1], format="yuv420p",
                                     interpolation="BILINEAR")
            reference, test = _luma(converter.convert(surface)), _luma(shown)
            scores.append((psnr(reference, test), ssim(reference, test)))
    encoder.close()
    assert first is not None
    seconds = len(surfaces) / fps
    return (
        f"{rung!s:>12}  {rung.bpp(bitrate):5.3f} bpp  "
        f"PSNR {statistics.median(s[0] for s in scores):5.2f} dB  "
        f"SSIM {statistics.median(s[1] for s in scores):.4f}  "
        f"{sum(sizes) * 8 / seconds / 1e6:5.2f} Mbit/s  "
        f"switch: reopen {reopen_ms:4.1f} ms, keyframe {first[0] / 1000:5.1f} kB "
        f"encoded in {first[1]:4.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    rendered.add_arguments(parser)
    parser.add_argument("--bitrate", default="2.2M", help="the target the rungs are compared at")
    parser.add_argument("--ceiling", default="8M", help="the configured bitrate")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    width, height = parse_resolution(args.resolution)
    bitrate, ceiling = parse_bitrate(args.bitrate), parse_bitrate(args.ceiling)
    surfaces = rendered.render(args.game, width, height, args.fps, round(args.seconds * args.fps))
    print(f"{args.codec}, {args.game} {args.resolution}@{args.fps} at {bitrate / 1e6:.2f} "
          f"Mbit/s (ceiling {ceiling / 1e6:.1f}); quality of the decoded frames scaled back "
          f"to {args.resolution}, after the first second")
    for rung in build_rungs(width, height, args.fps):
        print(_measure(rung, surfaces, (width, height), args.fps, ceiling, bitrate, args.codec))


if __name__ == "__main__":
    main()
