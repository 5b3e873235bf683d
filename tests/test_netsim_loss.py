"""Loss models: rates and burst lengths against their parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cloudarcade.netsim.loss import (
    FourStateLoss,
    GilbertElliottLoss,
    create_loss,
    create_loss_model,
)
from cloudarcade.netsim.packet import Packet
from cloudarcade.netsim.rng import BlockDraws, make_rng


def _pattern(stage_name: str, n: int, seed: int = 1, **opts: float) -> np.ndarray:
    stage = create_loss(stage_name, rng=make_rng(seed, "loss"), **opts)
    lost = np.zeros(n, dtype=bool)
    for i in range(n):
        stage.push(Packet(b"x", i * 1e-3, i), i * 1e-3)
        if stage.take_drops():
            lost[i] = True
    assert stage.drop_counts["loss"] == lost.sum()
    assert len(stage.pop_ready(n * 1e-3)) == n - lost.sum()
    return lost


def _bursts(lost: np.ndarray) -> np.ndarray:
    edges = np.diff(np.concatenate([[0], lost.astype(int), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_bernoulli_rate_within_ci() -> None:
    n, p = 100_000, 0.02
    lost = _pattern("bernoulli", n, p=p)
    half = 3.29 * math.sqrt(p * (1 - p) / n)  # 99.9% normal interval
    assert abs(lost.mean() - p) < half


def test_gilbert_elliott_rate_and_burst_length() -> None:
    p, r, n = 0.01, 0.25, 200_000
    lost = _pattern("gilbert-elliott", n, seed=3, p=p, r=r)
    bursts = _bursts(lost)
    # Expected: loss p/(p+r), mean burst 1/r. Bursts are geometric, so the CI of
    # their mean uses the geometric variance (1-r)/r^2; the loss rate's CI is
    # widened by the burst correlation (variance inflation ~ (2-p-r)/(p+r)).
    expected_rate = p / (p + r)
    inflation = (2 - p - r) / (p + r)
    half_rate = 3.29 * math.sqrt(expected_rate * (1 - expected_rate) * inflation / n)
    assert abs(lost.mean() - expected_rate) < half_rate
    half_burst = 3.29 * math.sqrt((1 - r) / r**2 / bursts.size)
    assert abs(bursts.mean() - 1 / r) < half_burst


def test_gilbert_elliott_partial_loss_states_mean() -> None:
    model = GilbertElliottLoss(0.05, 0.2, loss_bad=0.5, loss_good=0.01)
    lost = _pattern("gilbert-elliott", 100_000, seed=4, p=0.05, r=0.2, loss_bad=0.5, loss_good=0.01)
    assert lost.mean() == pytest.approx(model.mean_loss(), rel=0.08)


def test_four_state_matches_stationary_loss() -> None:
    opts = {"p13": 0.01, "p31": 0.3, "p32": 0.2, "p23": 0.4, "p14": 0.005}
    model = FourStateLoss(**opts)
    lost = _pattern("4state", 200_000, seed=5, **opts)
    assert lost.mean() == pytest.approx(model.mean_loss(), rel=0.08)


def test_four_state_isolated_losses_only() -> None:
    # Only state 4 reachable: every loss is a single packet.
    lost = _pattern("4state", 50_000, seed=6, p13=0.0, p14=0.02)
    assert _bursts(lost).max() == 1
    assert lost.mean() == pytest.approx(0.02 / 1.02, rel=0.1)


def test_loss_is_deterministic_per_seed() -> None:
    a = _pattern("gilbert-elliott", 5000, seed=9, p=0.05, r=0.3)
    b = _pattern("gilbert-elliott", 5000, seed=9, p=0.05, r=0.3)
    c = _pattern("gilbert-elliott", 5000, seed=10, p=0.05, r=0.3)
    assert (a == b).all() and (a != c).any()


def test_unknown_loss_model_names_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown loss model 'burst'; known: none, bernoulli"):
        create_loss_model("burst")


def test_probabilities_are_checked() -> None:
    with pytest.raises(ValueError, match="'p' must be a probability"):
        create_loss_model("bernoulli", p=1.5)


def test_block_draws_are_reproducible() -> None:
    a, b = BlockDraws(make_rng(1, "x")), BlockDraws(make_rng(1, "x"))
    assert [a.uniform() for _ in range(2000)] == [b.uniform() for _ in range(2000)]
