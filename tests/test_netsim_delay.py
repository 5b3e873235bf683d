"""Delay stages on a fake clock: distributions, order, correlation, chaining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from cloudarcade.netsim.delay import (
    DelayStage,
    EmpiricalDelay,
    create_delay,
    create_delay_model,
)
from cloudarcade.netsim.packet import Packet
from cloudarcade.netsim.rng import BlockDraws, make_rng
from cloudarcade.netsim.stage import Chain, run_fake_clock


def _send(stage: DelayStage | Chain, n: int, gap: float) -> tuple[np.ndarray, list[Packet]]:
    arrivals = [(i * gap, Packet(b"x" * 100, i * gap, i)) for i in range(n)]
    out = run_fake_clock(stage, arrivals)
    delays = np.array([p.time - p.arrival for p in sorted(out, key=lambda p: p.seq)])
    return delays, out


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("uniform", {"delay_ms": 20, "jitter_ms": 5}),
        ("normal", {"delay_ms": 20, "jitter_ms": 3}),
        ("pareto", {"delay_ms": 2, "jitter_ms": 1, "alpha": 2.5}),
    ],
)
def test_delivered_delay_matches_model(name: str, opts: dict[str, Any]) -> None:
    # Packets 100 ms apart cannot wait for each other, so FIFO order does not
    # distort the distribution; the delivered sample must match the model.
    stage = create_delay(name, rng=make_rng(7, "delay"), **opts)
    delays, _ = _send(stage, 4000, 0.1)
    reference = stage.model.sample(4000, np.random.default_rng(99))
    ks = stats.ks_2samp(delays, reference)
    assert ks.pvalue > 0.001, ks
    # Tolerances: mean within 3%, p99 within 8% of the model's own quantile.
    assert np.mean(delays) == pytest.approx(np.mean(reference), rel=0.03)
    assert np.percentile(delays, 99) == pytest.approx(stage.model.quantile(0.99), rel=0.08)


def test_uniform_p99_is_delay_plus_098_jitter() -> None:
    stage = create_delay("uniform", rng=make_rng(1, "d"), delay_ms=50, jitter_ms=10)
    delays, _ = _send(stage, 20000, 0.1)
    assert np.percentile(delays, 99) * 1e3 == pytest.approx(50 + 0.98 * 10, abs=0.15)
    assert delays.min() >= 0.040 and delays.max() <= 0.060


def test_constant_delay_is_exact() -> None:
    stage = create_delay("constant", delay_ms=10)
    delays, _ = _send(stage, 100, 0.001)
    assert np.allclose(delays, 0.010)


def test_two_chained_10ms_stages_give_20ms() -> None:
    chain = Chain([create_delay("constant", delay_ms=10), create_delay("constant", delay_ms=10)])
    delays, out = _send(chain, 500, 0.0005)
    assert len(out) == 500
    assert np.allclose(delays, 0.020)


def test_late_polling_does_not_add_to_downstream_delay() -> None:
    chain = Chain([create_delay("constant", delay_ms=10), create_delay("constant", delay_ms=10)])
    chain.push(Packet(b"a", 0.0), 0.0)
    # Poll 3 ms after the first stage released it: the second stage still counts from 10 ms.
    assert chain.pop_ready(0.013) == []
    (p,) = chain.pop_ready(0.0205)
    assert p.time == pytest.approx(0.020)


def test_order_kept_without_reorder() -> None:
    stage = create_delay("uniform", rng=make_rng(3, "d"), delay_ms=20, jitter_ms=10)
    _, out = _send(stage, 3000, 0.0002)  # 5k packets/s, jitter far above the gap
    seqs = [p.seq for p in out]
    assert seqs == sorted(seqs)
    times = [p.time for p in out]
    assert times == sorted(times)


def test_reorder_applies_each_packets_own_delay() -> None:
    stage = create_delay("uniform", rng=make_rng(3, "d"), delay_ms=20, jitter_ms=10, reorder=True)
    delays, out = _send(stage, 3000, 0.0002)
    seqs = [p.seq for p in out]
    assert seqs != sorted(seqs)
    ref = stage.model.sample(3000, np.random.default_rng(5))
    assert stats.ks_2samp(delays, ref).pvalue > 0.001


def test_correlation_is_ar1_and_keeps_the_marginal() -> None:
    stage = create_delay("normal", rng=make_rng(11, "d"), delay_ms=30, jitter_ms=4, correlation=0.8)
    delays, _ = _send(stage, 5000, 0.1)
    lag1 = np.corrcoef(delays[:-1], delays[1:])[0, 1]
    assert lag1 == pytest.approx(0.8, abs=0.05)
    assert np.mean(delays) == pytest.approx(0.030, rel=0.02)
    assert np.std(delays) == pytest.approx(0.004, rel=0.1)


def test_same_seed_same_output_packet_for_packet() -> None:
    def run(seed: int) -> list[float]:
        stage = create_delay("pareto", rng=make_rng(seed, "d"), delay_ms=1, jitter_ms=2)
        return [p.time for p in _send(stage, 500, 0.001)[1]]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_empirical_cdf_from_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = rng.gamma(4.0, 2.5, 3000)  # ms
    f = tmp_path / "delays.txt"
    f.write_text("# measured one-way delays, ms\n" + "\n".join(f"{v:.4f}" for v in samples))
    model = EmpiricalDelay.from_file(f)
    stage = DelayStage(model, BlockDraws(make_rng(2, "d")))
    delays, _ = _send(stage, 3000, 0.2)
    assert stats.ks_2samp(delays * 1e3, samples).pvalue > 0.001


def test_empirical_file_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("1.0\n2.0\nfast\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: expected a delay in ms"):
        EmpiricalDelay.from_file(f)


def test_unknown_distribution_names_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown delay distribution 'gamma'; known: constant"):
        create_delay_model("gamma")
