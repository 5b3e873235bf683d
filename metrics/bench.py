"""What the metrics cost one frame: ``python -m cloudarcade.metrics.bench``.

Times the calls one frame makes on a :class:`SessionMetrics` (render, encode,
send, the server-side stages, one input received and applied) on a fresh
registry and prints nanoseconds per frame against a 60 fps frame budget.
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import CollectorRegistry

from .definitions import Metrics
from .session import SessionMetrics

FRAME_BUDGET_S = 1 / 60
SERVER_STAGES = {
    "tick_wait": 0.004,
    "simulate": 0.0005,
    "render": 0.003,
    "convert": 0.0036,
    "encode_wait": 0.0002,
    "encode": 0.007,
    "packetize": 0.0003,
    "send": 0.0004,
}


def one_frame(s: SessionMetrics) -> None:
    """The updates one frame makes on the server."""
    s.input_received()
    s.input_applied(0.004)
    s.frame_rendered(0.003, 0.0036)
    s.frame_encoded(0.007, 12_000, None)
    s.frame_sent(10, 12_400)
    s.stages(SERVER_STAGES)


def one_frame_unbound(m: Metrics) -> None:
    """The same updates through ``.labels(...)`` on every call, for comparison."""
    lv = ("bench", "h264", "lan")
    m.inputs_received.labels(*lv).inc()
    m.input_apply_delay_seconds.labels(*lv).observe(0.004)
    m.frames_rendered.labels(*lv).inc()
    m.render_seconds.labels(*lv).observe(0.003)
    m.convert_seconds.labels(*lv).observe(0.0036)
    m.frames_encoded.labels(*lv).inc()
    m.encode_seconds.labels(*lv).observe(0.007)
    m.encoded_bytes.labels(*lv).inc(12_000)
    m.frames_sent.labels(*lv).inc()
    m.rtp_packets_sent.labels(*lv).inc(10)
    m.rtp_bytes_sent.labels(*lv).inc(12_400)
    for name, seconds in SERVER_STAGES.items():
        m.stage_seconds.labels(*lv, name).observe(seconds)


def measure(frames: int, repeats: int, bound: bool = True) -> list[float]:
    """Nanoseconds per frame, one figure per repeat."""
    metrics = Metrics(CollectorRegistry())
    s = SessionMetrics(metrics, game="bench", codec="h264", profile="lan")

    def frame() -> None:
        if bound:
            one_frame(s)
        else:
            one_frame_unbound(metrics)

    for _ in range(min(frames, 1000)):  # warm up
        frame()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(frames):
            frame()
        out.append((time.perf_counter_ns() - t0) / frames)
    s.close("closed")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    per_frame = measure(args.frames, args.repeats)
    best, median = min(per_frame), statistics.median(per_frame)
    budget_ns = FRAME_BUDGET_S * 1e9
    # input 2, render 3, encode 3, send 3, one observe per stage
    updates = 11 + len(SERVER_STAGES)
    print(f"one frame: 6 SessionMetrics calls, {updates} inc()/observe() updates")
    print(f"  median {median:,.0f} ns/frame, best {best:,.0f} ns/frame")
    print(
        f"  = {100 * median / budget_ns:.3f} % of a {FRAME_BUDGET_S * 1e3:.1f} ms frame budget "
        f"(60 fps)"
    )
    unbound = statistics.median(measure(args.frames, args.repeats, bound=False))
    print(f"  (with .labels() on every call instead: {unbound:,.0f} ns/frame)")


if __name__ == "__main__":
    main()
