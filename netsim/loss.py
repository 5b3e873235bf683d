"""Random loss: independent, Gilbert-Elliott, and netem's 4-state model.

The Markov models copy netem's per-packet logic (``loss_gilb_ell`` and
``loss_4state`` in sch_netem.c) so that parameters tuned for netem mean the same
thing here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from .packet import Packet
from .rng import BlockDraws
from .stage import PassStage


def _prob(opts: dict[str, Any], key: str, default: float | None = None) -> float:
    if key not in opts:
        if default is None:
            raise ValueError(f"missing loss parameter {key!r}")
        return default
    v = float(opts[key])
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"loss parameter {key!r} must be a probability in [0, 1], got {v}")
    return v


class LossModel(ABC):
    """Decides, packet by packet, whether a packet is lost."""

    @abstractmethod
    def lost(self, draws: BlockDraws) -> bool: ...

    @abstractmethod
    def mean_loss(self) -> float:
        """The stationary loss rate."""


class NoLoss(LossModel):
    def lost(self, draws: BlockDraws) -> bool:
        return False

    def mean_loss(self) -> float:
        return 0.0


class BernoulliLoss(LossModel):
    """Each packet lost independently with probability ``p``."""

    def __init__(self, p: float) -> None:
        self.p = p

    def lost(self, draws: BlockDraws) -> bool:
        return draws.uniform() < self.p

    def mean_loss(self) -> float:
        return self.p


class GilbertElliottLoss(LossModel):
    """netem ``gemodel p r 1-h 1-k``: ``p`` = P(good->bad), ``r`` = P(bad->good),
    ``loss_bad`` = 1-h, ``loss_good`` = 1-k.

    As in netem, the transition is drawn first and the loss uses the state the
    packet found on arrival. With loss_bad=1, loss_good=0 the mean loss burst is
    1/r packets and the loss rate p/(p+r).
    """

    def __init__(self, p: float, r: float, loss_bad: float = 1.0, loss_good: float = 0.0) -> None:
        if p + r <= 0:
            raise ValueError("gilbert-elliott needs p + r > 0")
        self.p, self.r, self.loss_bad, self.loss_good = p, r, loss_bad, loss_good
        self.bad = False

    def lost(self, draws: BlockDraws) -> bool:
        if self.bad:
            if draws.uniform() < self.r:
                self.bad = False
            return draws.uniform() < self.loss_bad
        if draws.uniform() < self.p:
            self.bad = True
        return draws.uniform() < self.loss_good

    def mean_loss(self) -> float:
        pi_bad = self.p / (self.p + self.r)
        return pi_bad * self.loss_bad + (1.0 - pi_bad) * self.loss_good


class FourStateLoss(LossModel):
    """netem ``loss state p13 p31 p32 p23 p14``.

    States: 1 received in a gap, 2 received in a burst, 3 lost in a burst,
    4 isolated loss. A packet's fate is the state it moves to.
    Defaults as netem's: p31 = 1-p13, p32 = 0, p23 = 1, p14 = 0.
    """

    def __init__(
        self, p13: float, p31: float, p32: float = 0.0, p23: float = 1.0, p14: float = 0.0
    ) -> None:
        if p13 + p14 > 1 or p31 + p32 > 1:
            raise ValueError("4state: p13 + p14 and p31 + p32 must each be <= 1")
        self.p13, self.p31, self.p32, self.p23, self.p14 = p13, p31, p32, p23, p14
        self.state = 1

    def lost(self, draws: BlockDraws) -> bool:
        u = draws.uniform()
        s = self.state
        if s == 1:
            if u < self.p14:
                self.state = 4
            elif u < self.p14 + self.p13:
                self.state = 3
        elif s == 2:
            if u < self.p23:
                self.state = 3
        elif s == 3:
            if u < self.p32:
                self.state = 2
            elif u < self.p32 + self.p31:
                self.state = 1
        else:
            self.state = 1
        return self.state in (3, 4)

    def mean_loss(self) -> float:
        # Stationary distribution of the 4-state chain, solved numerically.
        p = np.zeros((4, 4))
        p[0, 3], p[0, 2] = self.p14, self.p13
        p[0, 0] = 1 - self.p14 - self.p13
        p[1, 2], p[1, 1] = self.p23, 1 - self.p23
        p[2, 1], p[2, 0] = self.p32, self.p31
        p[2, 2] = 1 - self.p32 - self.p31
        p[3, 0] = 1.0
        a = np.vstack([p.T - np.eye(4), np.ones(4)])
        b = np.array([0, 0, 0, 0, 1.0])
        pi = np.linalg.lstsq(a, b, rcond=None)[0]
        return float(pi[2] + pi[3])


def _four_state(o: dict[str, Any]) -> FourStateLoss:
    p13 = _prob(o, "p13")
    return FourStateLoss(
        p13,
        _prob(o, "p31", 1.0 - p13),
        _prob(o, "p32", 0.0),
        _prob(o, "p23", 1.0),
        _prob(o, "p14", 0.0),
    )


_MODELS: dict[str, Callable[[dict[str, Any]], LossModel]] = {
    "none": lambda o: NoLoss(),
    "bernoulli": lambda o: BernoulliLoss(_prob(o, "p")),
    "gilbert-elliott": lambda o: GilbertElliottLoss(
        _prob(o, "p"), _prob(o, "r"), _prob(o, "loss_bad", 1.0), _prob(o, "loss_good", 0.0)
    ),
    "4state": _four_state,
}
LOSS_MODELS = tuple(_MODELS)


def create_loss_model(name: str, **opts: Any) -> LossModel:
    """A loss model by name: ``none``, ``bernoulli`` (p), ``gilbert-elliott``
    (p, r, loss_bad, loss_good), ``4state`` (p13, p31, p32, p23, p14)."""
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown loss model {name!r}; known: {', '.join(LOSS_MODELS)}") from None
    return factory(opts)


class LossStage(PassStage):
    """Drops packets the model marks lost (reason ``"loss"``); passes the rest at once."""

    def __init__(self, model: LossModel, draws: BlockDraws) -> None:
        super().__init__()
        self.model = model
        self.draws = draws

    def push(self, packet: Packet, now: float) -> None:
        if self.model.lost(self.draws):
            self.drop(packet, "loss", now)
        else:
            packet.time = now
            self._ready.append(packet)


def create_loss(name: str, *, rng: np.random.Generator | None = None, **opts: Any) -> LossStage:
    """A loss stage by model name (see ``create_loss_model``)."""
    model = create_loss_model(name, **opts)
    return LossStage(model, BlockDraws(rng if rng is not None else np.random.default_rng(0)))
