"""When FEC turns on and how many columns, from transport-cc results under a fake clock."""

from __future__ import annotations

import random

import pytest

from cloudarcade.cc.fec_policy import FecPolicy
from cloudarcade.cc.history import PacketResult


def _feed(policy: FecPolicy, lost: list[bool], start_seq: int, start: float,
          per_feedback: int = 20) -> float:
    """Report ``lost`` in order, ``per_feedback`` a feedback, 25 ms apart; returns the time."""
    now = start
    for i in range(0, len(lost), per_feedback):
        results = [PacketResult(start_seq + j, 1200, now, None if lost[j] else now + 0.03)
                   for j in range(i, min(i + per_feedback, len(lost)))]
        policy.on_results(results, now)
        now += 0.025
    return now


def _gilbert_elliott(n: int, p: float, r: float, seed: int = 1) -> list[bool]:
    rng, bad, out = random.Random(seed), False, []
    for _ in range(n):
        bad = rng.random() >= r if bad else rng.random() < p
        out.append(bad)
    return out


def test_a_lossless_link_never_turns_fec_on() -> None:
    policy = FecPolicy()
    _feed(policy, [False] * 20_000, 0, 0.0)
    assert policy.columns() == 0 and policy.loss == 0.0


def test_bursty_loss_turns_it_on_with_columns_from_the_burst_length() -> None:
    policy = FecPolicy()
    # 5g-congested: p = 0.002, r = 0.3 -> 0.66 % in bursts of 3.3 on average.
    now = _feed(policy, _gilbert_elliott(30_000, 0.002, 0.3), 0, 0.0)
    assert policy.active
    assert 2.3 < policy.mean_burst < 4.5, policy.mean_burst
    assert 4 <= policy.columns() <= 6
    # Loss stops: the decayed loss falls under off_loss and FEC goes off.
    _feed(policy, [False] * 40_000, 30_000, now)
    assert not policy.active and policy.columns() == 0


def test_single_losses_need_one_column_and_the_cap_holds() -> None:
    single = FecPolicy()
    _feed(single, [i % 100 == 0 for i in range(5000)], 0, 0.0)
    assert single.mean_burst == pytest.approx(1.0) and single.columns() == 1
    long = FecPolicy(max_columns=3)
    _feed(long, [i % 200 < 10 for i in range(5000)], 0, 0.0)
    assert long.mean_burst == pytest.approx(10.0) and long.columns() == 3


def test_always_is_on_from_the_start_and_stays_on_without_loss() -> None:
    policy = FecPolicy(always=True, max_columns=4)
    assert policy.columns() == 4  # no burst seen yet: the cap
    _feed(policy, [i % 300 < 2 for i in range(3000)], 0, 0.0)
    assert policy.columns() == 3  # bursts of 2: 0.5 ** 3 <= 0.2, the count follows them
    _feed(policy, [False] * 40_000, 3000, 100.0)
    assert policy.active and policy.columns() >= 1


def test_until_a_few_bursts_are_seen_the_cap_is_used() -> None:
    policy = FecPolicy(max_columns=6)
    lost = [False] * 400
    lost[100] = lost[101] = True  # the loss turns it on; one burst says little
    _feed(policy, lost, 0, 0.0)
    assert policy.active and policy.columns() == 6


def test_a_loss_reported_again_counts_once() -> None:
    policy = FecPolicy()
    results = [PacketResult(seq, 1200, 0.0, None if seq == 5 else 0.01) for seq in range(10)]
    policy.on_results(results, 0.0)
    policy.on_results(results[3:], 0.025)
    assert policy.loss == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"on_loss": 0.001, "off_loss": 0.002}, "expected 0 <= off <= on <= 1"),
    ({"residual": 1.0}, "expected 0 < residual < 1"),
    ({"max_columns": 0}, "expected >= 1"),
    ({"window": 0.0}, "expected > 0"),
])
def test_bad_settings_say_what_was_expected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FecPolicy(**kwargs)  # type: ignore[arg-type]
