"""Synthetic cellular bandwidth traces in Mahimahi format, from a seeded model.

The model, per millisecond:

1. A Markov-modulated rate: the link sits in one of N rate states (Mbps) for an
   exponentially distributed dwell time (mean per state), then jumps to another
   state chosen uniformly. Stationary mean = sum(rate_i * dwell_i) / sum(dwell_i).
2. Handovers / blockage: a Poisson process (mean interval ``handover_every_s``)
   starts a gap of ``handover_gap_ms`` with no delivery at all, followed by a
   linear ramp back to the state's rate over ``handover_ramp_ms``.
3. The number of 1500-byte opportunities in a millisecond is Poisson with mean
   rate * 1 ms / 12000 bits, which gives the short-term burstiness of a
   scheduled radio link.

The last line is the trace duration, which Mahimahi uses as the loop period.

Regenerate the shipped traces (seeds recorded in ``SHIPPED``)::

    python -m cloudarcade.netsim.tracegen --shipped netsim/traces
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .rng import make_rng
from .trace import OPPORTUNITY_BYTES, Trace


@dataclass(frozen=True)
class TraceModel:
    """Parameters of the generator (see the module docstring)."""

    states_mbps: tuple[float, ...]
    dwell_s: tuple[float, ...]
    handover_every_s: float | None = None
    handover_gap_ms: float = 0.0
    handover_ramp_ms: float = 0.0

    @property
    def mean_mbps(self) -> float:
        """Stationary mean rate without handovers."""
        w = np.array(self.dwell_s)
        return float(np.dot(self.states_mbps, w) / w.sum())


PRESETS: dict[str, TraceModel] = {
    # LTE: 13 Mbps down / 6 up median (Opensignal), strong fluctuation.
    "lte-down": TraceModel((4.0, 13.0, 25.0), (2.0, 3.0, 2.0), 20.0, 40.0, 300.0),
    "lte-up": TraceModel((2.0, 6.0, 10.0), (2.0, 3.0, 2.0), 20.0, 40.0, 300.0),
    # mmWave: ~495 Mbps average (Opensignal 2020) with blockage dips (Fezeu et al.).
    "5g-mmwave-down": TraceModel((50.0, 400.0, 800.0), (0.05, 0.1, 0.1), 1.0, 20.0, 100.0),
    "5g-mmwave-up": TraceModel((20.0, 60.0, 100.0), (0.05, 0.1, 0.1), 1.0, 20.0, 100.0),
}

#: Shipped files: preset, seed, duration (s). Short mmWave traces keep the files small.
#: A short file samples few rate states, so its mean can stray from the model's;
#: each seed below is one whose file mean lies within 10% of the model mean.
SHIPPED: dict[str, tuple[str, int, float]] = {
    "lte-down.trace": ("lte-down", 13, 20.0),
    "lte-up.trace": ("lte-up", 2, 20.0),
    "5g-mmwave-down.trace": ("5g-mmwave-down", 4, 1.0),
    "5g-mmwave-up.trace": ("5g-mmwave-up", 4, 1.0),
}


def rate_series(model: TraceModel, duration_s: float, seed: int) -> np.ndarray:
    """The modelled capacity (Mbps) for each millisecond."""
    rng = make_rng(seed, "tracegen")
    n = round(duration_s * 1000)
    rates = np.empty(n)
    state = int(rng.integers(len(model.states_mbps)))
    t = 0
    while t < n:
        dwell = max(1, int(rng.exponential(model.dwell_s[state]) * 1000))
        rates[t : t + dwell] = model.states_mbps[state]
        t += dwell
        if len(model.states_mbps) > 1:
            others = [s for s in range(len(model.states_mbps)) if s != state]
            state = int(rng.choice(others))
    if model.handover_every_s:
        t_ho = rng.exponential(model.handover_every_s) * 1000
        gap, ramp = int(model.handover_gap_ms), int(model.handover_ramp_ms)
        while t_ho < n:
            a = int(t_ho)
            rates[a : a + gap] = 0.0
            if ramp:
                seg = rates[a + gap : a + gap + ramp]
                seg *= np.linspace(0.0, 1.0, ramp, endpoint=False)[: seg.size]
            t_ho += gap + ramp + rng.exponential(model.handover_every_s) * 1000
    return rates


def generate(model: TraceModel, duration_s: float, seed: int) -> Trace:
    """A trace of ``duration_s`` seconds; same model and seed give the same trace."""
    rates = rate_series(model, duration_s, seed)
    rng = make_rng(seed, "tracegen", "opportunities")
    per_ms = rates * 1e6 / 1000.0 / (OPPORTUNITY_BYTES * 8)
    counts = rng.poisson(per_ms)
    times = np.repeat(np.arange(1, counts.size + 1), counts).tolist()
    period = counts.size
    # The last line is the loop period: make sure it is exactly the duration.
    if not times or times[-1] != period:
        times.append(period)
    return Trace(tuple(times), f"<{model}>")


def write_shipped(directory: Path) -> list[Path]:
    """Regenerate every file in ``SHIPPED`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, (preset, seed, duration) in SHIPPED.items():
        trace = generate(PRESETS[preset], duration, seed)
        trace.write(directory / filename)
        written.append(directory / filename)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cloudarcade.netsim.tracegen",
        description="Write a synthetic Mahimahi bandwidth trace from a seeded model.",
    )
    parser.add_argument("preset", nargs="?", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    parser.add_argument("--shipped", type=Path, metavar="DIR", help="regenerate shipped traces")
    args = parser.parse_args(argv)
    if args.shipped:
        for p in write_shipped(args.shipped):
            print(p)
        return 0
    if args.preset is None:
        parser.error("give a preset or --shipped DIR")
    trace = generate(PRESETS[args.preset], args.duration, args.seed)
    if args.output:
        trace.write(args.output)
        print(f"{args.output}: {trace.mean_rate_bps / 1e6:.2f} Mbps mean", file=sys.stderr)
    else:
        sys.stdout.write(trace.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
