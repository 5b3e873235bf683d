"""Properties of whole chains: every packet is delivered or dropped once, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade.netsim.packet import Packet
from cloudarcade.netsim.profile import parse_profiles
from cloudarcade.netsim.stage import run_fake_clock

links = st.fixed_dictionaries(
    {
        "delay_ms": st.floats(0, 50),
        "jitter_ms": st.floats(0, 20),
        "distribution": st.sampled_from(["constant", "uniform", "normal", "pareto"]),
        "correlation": st.floats(0, 0.95),
        "loss": st.floats(0, 0.3),
        "rate_mbps": st.floats(0.5, 100),
        "queue": st.fixed_dictionaries(
            {"kind": st.sampled_from(["droptail", "codel"]), "packets": st.integers(1, 200)}
        ),
        "outages": st.just([{"start_ms": 50, "duration_ms": 20, "period_ms": 200}]),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    link=links,
    gaps=st.lists(st.floats(0, 0.005), min_size=1, max_size=300),
    seed=st.integers(0, 2**32),
)
def test_conservation_and_order_without_reorder(
    link: dict[str, object], gaps: list[float], seed: int
) -> None:
    profile = parse_profiles(
        {"p": {"description": "d", "source": "s", "seed": seed, **link}}, "<h>", None
    )["p"]
    chain = profile.build_chain("downlink")
    t = 0.0
    arrivals = []
    for i, gap in enumerate(gaps):
        t += gap
        arrivals.append((t, Packet(b"x" * 500, t, i)))
    out = run_fake_clock(chain, arrivals)
    dropped = chain.take_drops()
    assert len(out) + len(dropped) == len(arrivals)
    assert {p.seq for p in out}.isdisjoint(d.packet.seq for d in dropped)
    assert [p.seq for p in out] == sorted(p.seq for p in out)
    assert all(p.time >= p.arrival for p in out)
    assert {d.reason for d in dropped} <= {"loss", "queue", "outage"}
