"""What changing a running encoder's bitrate costs: in place vs reopening.

    python -m cloudarcade.bench.encoder_bitrate --codec libx264 --game terrain

Renders ``--game`` at 720p60, encodes ``--frames`` frames at the ceiling
(``--bitrate``), then switches to ``--to`` two ways — ``set_bitrate`` on the
open encoder, and closing and opening a new one at the lower rate (aiortc's
way) — and prints, per way: the rate reached after the switch, frames until
the frame size settles, keyframes, the biggest frame and the time the switch
itself took. Then, in place again but with ``--gap`` frames skipped at the
switch (as the server skips them while the link is full), the size of the
first frame after the gap against its budget, with the encoder's
``gap_bitrate_factor`` and without it. A benchmark command: it prints
figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import av

from cloudarcade.bench import rendered
from cloudarcade.encoder import EncodedFrame, EncoderConfig, create_encoder
from cloudarcade.server.pipeline import SurfaceConverter


def _frames(game_name: str, width: int, height: int, fps: int, count: int) -> list[av.VideoFrame]:
    converter = SurfaceConverter(width, height)
    return [converter.convert(s) for s in rendered.render(game_name, width, height, fps, count)]


def _report(way: str, frames: list[EncodedFrame], fps: int, to: int, switch_ms: float) -> None:
    sizes = [f.size for f in frames]
    rate = sum(sizes[fps // 2 :]) * 8 * fps / max(len(sizes) - fps // 2, 1)
    budget = to / 8 / fps
    settled = next(
        (i for i in range(len(sizes)) if all(s < 1.5 * budget for s in sizes[i : i + 10])),
        len(sizes),
    )
    print(
        f"{way:8} rate after switch {rate / 1e6:5.2f} Mbit/s (asked {to / 1e6:.2f}), "
        f"settled after {settled} frames, keyframes {sum(f.keyframe for f in frames)}, "
        f"max frame {max(sizes) / 1000:.1f} kB (budget {budget / 1000:.1f} kB), "
        f"switch {switch_ms:.2f} ms, encode p50 "
        f"{statistics.median(f.encode_time for f in frames) * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    rendered.add_arguments(parser)
    parser.add_argument("--bitrate", type=int, default=8_000_000)
    parser.add_argument("--to", type=int, default=3_000_000)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--gap", type=int, default=5,
                        help="frames skipped at the switch for the gap measurement")
    args = parser.parse_args()
    width, height = (int(v) for v in args.resolution.split("x"))
    frames = _frames(args.game, width, height, args.fps, 2 * args.frames)
    config = EncoderConfig(width, height, args.fps, args.bitrate)
    print(f"{args.codec}, {args.game} {args.resolution}@{args.fps}, "
          f"{args.bitrate / 1e6:.1f} → {args.to / 1e6:.1f} Mbit/s")

    encoder = create_encoder(args.codec, config)
    before = [e for f in frames[: args.frames] if (e := encoder.encode(f)) is not None]
    rate = sum(e.size for e in before[args.fps // 2 :]) * 8 * args.fps
    print(f"before   rate {rate / max(len(before) - args.fps // 2, 1) / 1e6:5.2f} Mbit/s")
    start = time.perf_counter()
    encoder.set_bitrate(args.to)
    switch = (time.perf_counter() - start) * 1000
    after = [e for f in frames[args.frames :] if (e := encoder.encode(f)) is not None]
    _report("in place" if encoder.live_bitrate else "ignored", after, args.fps, args.to, switch)
    encoder.close()

    encoder = create_encoder(args.codec, config)
    for f in frames[: args.frames]:
        encoder.encode(f)
    start = time.perf_counter()
    encoder.close()
    encoder = create_encoder(args.codec, replace(config, bitrate=args.to))
    switch = (time.perf_counter() - start) * 1000
    after = [e for f in frames[args.frames :] if (e := encoder.encode(f)) is not None]
    _report("reopen", after, args.fps, args.to, switch)
    encoder.close()

    budget = args.to / 8 / args.fps
    for factor in (None, 1.0):
        encoder = create_encoder(args.codec, config)
        if factor is not None:
            encoder.gap_bitrate_factor = factor  # type: ignore[misc]  # this instance only
        used = encoder.gap_bitrate_factor
        step = 90_000 // args.fps
        for i, f in enumerate(frames[: args.frames]):
            encoder.encode(f, pts=i * step)
        encoder.set_bitrate(args.to)
        first = args.frames + args.gap  # the frames in between are not encoded
        sizes = [e.size for i, f in enumerate(frames[first : first + 4], start=first)
                 if (e := encoder.encode(f, pts=i * step)) is not None]
        rest = ", ".join(f"{x / 1000:.1f}" for x in sizes[1:])
        print(f"gap {args.gap:2d}  factor {used:.2f}: first frame after it "
              f"{sizes[0] / 1000:.1f} kB, the next three {rest} kB "
              f"(budget {budget / 1000:.1f} kB)")
        encoder.close()


if __name__ == "__main__":
    main()
