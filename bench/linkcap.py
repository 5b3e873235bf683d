"""A profile's downlink capacity over time, and piecewise-constant step traces.

The bench compares what the sender did with what the link could carry: a
``rate_mbps`` link is constant; a trace link follows its Mahimahi trace from
its origin (the relay starts a trace at the first packet it carries, and the
bench asks the server for that moment: :mod:`cloudarcade.bench.link_origin`).

:func:`step_trace` writes the shipped capacity-dip trace::

    python -m cloudarcade.bench.linkcap 5:20 6:3 10:20 -o netsim/traces/dip.trace
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudarcade.netsim.profile import Profile
from cloudarcade.netsim.trace import OPPORTUNITY_BYTES, Trace, load_trace

_BIN_S = 0.1


@dataclass(frozen=True)
class Capacity:
    """Downlink capacity as a step function: ``rates[i]`` bits/s from ``i * bin`` s, looped."""

    rates: tuple[float, ...]
    bin: float = _BIN_S

    @property
    def period(self) -> float:
        return len(self.rates) * self.bin

    def at(self, t: float) -> float:
        """Capacity at ``t`` seconds after the link's origin."""
        index = math.floor(t / self.bin) % len(self.rates)
        return self.rates[index]

    def mean(self, start: float, end: float) -> float:
        """Mean capacity over ``[start, end)`` seconds after the origin."""
        if end <= start:
            return self.at(start)
        steps = max(int((end - start) / self.bin), 1)
        return sum(self.at(start + (i + 0.5) * (end - start) / steps) for i in range(steps)) / steps

    def steps(
        self, start: float, end: float, factor: float = 2.0
    ) -> list[tuple[float, float, float]]:
        """(time, old rate, new rate) where the capacity changes by ``factor`` or more
        between two bins within ``[start, end)``."""
        out: list[tuple[float, float, float]] = []
        n = len(self.rates)
        first = math.floor(start / self.bin) + 1
        for i in range(first, math.ceil(end / self.bin)):
            old, new = self.rates[(i - 1) % n], self.rates[i % n]
            if old > 0 and new > 0 and max(old / new, new / old) >= factor:
                out.append((i * self.bin, old, new))
        return out


def constant(rate_bps: float) -> Capacity:
    return Capacity((rate_bps,), bin=1.0)


def from_trace(trace: Trace, bin_s: float = _BIN_S) -> Capacity:
    """Bits/s per ``bin_s`` of one period of the trace."""
    bins = max(math.ceil(trace.period_ms / 1000 / bin_s), 1)
    counts = [0] * bins
    for t in trace.times_ms:
        counts[min(int(t / 1000 / bin_s), bins - 1)] += 1
    return Capacity(tuple(c * OPPORTUNITY_BYTES * 8 / bin_s for c in counts), bin=bin_s)


def downlink_capacity(profile: Profile) -> Capacity | None:
    """The profile's downlink capacity, or None when it sets no rate limit."""
    link = profile.downlink
    if link.trace is not None:
        return from_trace(load_trace(link.trace))
    if link.rate_mbps is not None:
        return constant(link.rate_mbps * 1e6)
    return None


def step_trace(segments: Sequence[tuple[float, float]]) -> Trace:
    """A Mahimahi trace of ``(seconds, Mbit/s)`` segments, opportunities spread evenly."""
    times: list[int] = []
    start_ms = 0.0
    owed = 0.0
    for seconds, mbps in segments:
        if seconds <= 0 or mbps <= 0:
            raise ValueError(f"segment {seconds}:{mbps}: expected positive seconds and Mbit/s")
        per_ms = mbps * 1e6 / (OPPORTUNITY_BYTES * 8) / 1000
        for ms in range(int(start_ms), int(start_ms + seconds * 1000)):
            owed += per_ms
            while owed >= 1:
                times.append(ms + 1)
                owed -= 1
        start_ms += seconds * 1000
    if times[-1] != int(start_ms):
        times.append(int(start_ms))  # the period ends with the last segment
    return Trace(tuple(times), source="step_trace")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a piecewise-constant Mahimahi trace.")
    parser.add_argument("segments", nargs="+", metavar="SECONDS:MBITS")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    segments = []
    for text in args.segments:
        seconds, _, mbps = text.partition(":")
        try:
            segments.append((float(seconds), float(mbps)))
        except ValueError:
            parser.error(f"segment {text!r}: expected SECONDS:MBITS like 6:3")
    trace = step_trace(segments)
    trace.write(args.output)
    print(f"{args.output}: {len(trace.times_ms)} opportunities, period {trace.period_ms} ms, "
          f"mean {trace.mean_rate_bps / 1e6:.2f} Mbit/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
