"""Propagation delay with jitter: the distributions and the stage that applies them.

Semantics follow netem where netem defines them: ``uniform`` is delay ± jitter
(so p99 = delay + 0.98 jitter), ``normal`` has sigma = jitter. Correlation is an
AR(1) process on a Gaussian copula: z[n] = rho z[n-1] + sqrt(1-rho^2) e[n], and
the delay is the distribution's quantile at Phi(z[n]). Unlike netem's own
correlation (which skews the marginal), this keeps the marginal exactly the
configured distribution for any rho, so a KS test can check it.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .packet import Packet
from .rng import BlockDraws
from .stage import Stage

_SQRT2 = math.sqrt(2.0)


class DelayModel(ABC):
    """A one-way delay distribution in seconds, defined by its quantile function."""

    @abstractmethod
    def quantile(self, u: float) -> float:
        """Delay (s) at probability ``u`` in (0, 1)."""

    def sample(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        """``n`` independent draws (s): the reference a delivered sample is tested against."""
        return np.array([self.quantile(u) for u in rng.random(n)])

    def sample_z(self, z: float) -> float:
        """Delay for a standard-normal ``z`` (the copula variable)."""
        return self.quantile(0.5 * (1.0 + math.erf(z / _SQRT2)))


class ConstantDelay(DelayModel):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def quantile(self, u: float) -> float:
        return self.delay

    def sample_z(self, z: float) -> float:
        return self.delay


class UniformDelay(DelayModel):
    """delay ± jitter, uniform (netem's default without a distribution table)."""

    def __init__(self, delay: float, jitter: float) -> None:
        self.delay, self.jitter = delay, jitter

    def quantile(self, u: float) -> float:
        return max(0.0, self.delay + self.jitter * (2.0 * u - 1.0))


class NormalDelay(DelayModel):
    """Normal with mean ``delay`` and sigma ``jitter``, clipped at 0."""

    def __init__(self, delay: float, jitter: float) -> None:
        self.delay, self.jitter = delay, jitter

    def quantile(self, u: float) -> float:
        u = min(max(u, 1e-12), 1.0 - 1e-12)
        from scipy.special import ndtri  # scipy is heavy to import; only the slow path needs it

        return max(0.0, self.delay + self.jitter * float(ndtri(u)))

    def sample_z(self, z: float) -> float:
        return max(0.0, self.delay + self.jitter * z)


class ParetoDelay(DelayModel):
    """Heavy tail: ``delay`` is the floor, plus a Lomax(alpha) tail of scale ``jitter``.

    quantile(u) = delay + jitter * ((1-u)^(-1/alpha) - 1); median = delay +
    jitter * (2^(1/alpha) - 1). With alpha <= 1 the mean is infinite, so a cap
    (``cap``, seconds) bounds single draws.
    """

    def __init__(self, delay: float, jitter: float, alpha: float = 1.5, cap: float = 10.0) -> None:
        self.delay, self.jitter, self.alpha, self.cap = delay, jitter, alpha, cap

    def quantile(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0 - 1e-12)
        tail = self.jitter * ((1.0 - u) ** (-1.0 / self.alpha) - 1.0)
        return float(min(self.delay + tail, self.cap))


class EmpiricalDelay(DelayModel):
    """The empirical distribution of delay samples read from a file (ms, one per line).

    Quantiles interpolate linearly between the sorted samples.
    """

    def __init__(self, samples_s: npt.NDArray[np.float64]) -> None:
        if samples_s.size < 2:
            raise ValueError("an empirical delay needs at least 2 samples")
        self.values = np.sort(samples_s)
        self.probs = np.linspace(0.0, 1.0, self.values.size)

    @classmethod
    def from_file(cls, path: str | Path) -> EmpiricalDelay:
        """Load samples in ms; blank lines and ``#`` comments are skipped.

        Errors start with ``file:line:`` like a compiler's.
        """
        path = Path(path)
        values: list[float] = []
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read delay file: {exc.strerror}") from exc
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                v = float(line)
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: expected a delay in ms (a number >= 0), got {line!r}"
                ) from None
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{path}:{lineno}: expected a delay in ms >= 0, got {line!r}")
            values.append(v / 1000.0)
        if len(values) < 2:
            raise ValueError(f"{path}: expected at least 2 delay samples, got {len(values)}")
        return cls(np.array(values))

    def quantile(self, u: float) -> float:
        return float(np.interp(u, self.probs, self.values))


def _ms(opts: dict[str, Any], key: str, default: float = 0.0) -> float:
    return float(opts.get(key, default)) / 1000.0


_MODELS: dict[str, Callable[[dict[str, Any]], DelayModel]] = {
    "constant": lambda o: ConstantDelay(_ms(o, "delay_ms")),
    "uniform": lambda o: UniformDelay(_ms(o, "delay_ms"), _ms(o, "jitter_ms")),
    "normal": lambda o: NormalDelay(_ms(o, "delay_ms"), _ms(o, "jitter_ms")),
    "pareto": lambda o: ParetoDelay(
        _ms(o, "delay_ms"),
        _ms(o, "jitter_ms"),
        float(o.get("alpha", 1.5)),
        _ms(o, "cap_ms", 10_000.0),
    ),
    "empirical": lambda o: EmpiricalDelay.from_file(o["file"]),
}

DELAY_MODELS = tuple(_MODELS)


def create_delay_model(name: str, **opts: Any) -> DelayModel:
    """A delay distribution by name; options in ms: ``delay_ms``, ``jitter_ms``,
    ``alpha`` and ``cap_ms`` (pareto), ``file`` (empirical)."""
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown delay distribution {name!r}; known: {', '.join(DELAY_MODELS)}"
        ) from None
    return factory(opts)


class DelayStage(Stage):
    """Holds each packet for a delay drawn from ``model``.

    Without ``reorder`` a packet never leaves before the one ahead of it (it
    waits for it, as on a real path where jitter comes from queues); with it,
    each packet keeps its own delay and may overtake.
    """

    def __init__(
        self,
        model: DelayModel,
        draws: BlockDraws | None = None,
        *,
        correlation: float = 0.0,
        reorder: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= correlation < 1.0:
            raise ValueError(f"correlation must be in [0, 1), got {correlation}")
        self.model = model
        self.draws = draws
        self.rho = correlation
        self._innov = math.sqrt(1.0 - correlation * correlation)
        self._z = 0.0
        self._first = True
        self.reorder = reorder
        self._fifo: deque[Packet] = deque()
        self._heap: list[tuple[float, int, Packet]] = []
        self._n = 0
        self._last_departure = -math.inf

    def _draw(self) -> float:
        if self.draws is None or isinstance(self.model, ConstantDelay):
            return self.model.quantile(0.5)
        e = self.draws.normal()
        # The first draw starts from the stationary distribution, not from z=0.
        self._z = e if self._first else self.rho * self._z + self._innov * e
        self._first = False
        return self.model.sample_z(self._z)

    def push(self, packet: Packet, now: float) -> None:
        departure = now + self._draw()
        if self.reorder:
            packet.time = departure
            heapq.heappush(self._heap, (departure, self._n, packet))
            self._n += 1
        else:
            departure = max(departure, self._last_departure)
            self._last_departure = departure
            packet.time = departure
            self._fifo.append(packet)

    def pop_ready(self, now: float) -> list[Packet]:
        out: list[Packet] = []
        fifo = self._fifo
        while fifo and fifo[0].time <= now:
            out.append(fifo.popleft())
        heap = self._heap
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_wakeup(self) -> float | None:
        if self._fifo:
            return self._fifo[0].time
        if self._heap:
            return self._heap[0][0]
        return None


def create_delay(
    name: str,
    *,
    rng: np.random.Generator | None = None,
    correlation: float = 0.0,
    reorder: bool = False,
    **opts: Any,
) -> DelayStage:
    """A delay stage by distribution name (see ``create_delay_model`` for options)."""
    model = create_delay_model(name, **opts)
    draws = BlockDraws(rng if rng is not None else np.random.default_rng(0))
    return DelayStage(model, draws, correlation=correlation, reorder=reorder)
