"""Profile files: shipped profiles, user files, and error messages that say where."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloudarcade.netsim.packet import Packet
from cloudarcade.netsim.profile import ProfileError, get_profile, load_profiles
from cloudarcade.netsim.stage import run_fake_clock
from cloudarcade.netsim.tracegen import PRESETS, generate

REQUIRED = (
    "ideal",
    "wired",
    "wifi",
    "lte",
    "5g-nsa",
    "5g-sa",
    "5g-mmwave",
    "5g-congested",
    "5g-handover",
)


def test_shipped_profiles_exist_with_sources_and_build() -> None:
    profiles = load_profiles()
    for name in REQUIRED:
        p = profiles[name]
        assert p.description and p.source
        for d in ("uplink", "downlink"):
            p.build_chain(d)
    assert profiles["ideal"].downlink.is_ideal and profiles["ideal"].uplink.is_ideal
    assert profiles["5g-nsa"].uplink.delay_ms != profiles["5g-nsa"].downlink.delay_ms


def test_ideal_profile_passes_packets_untouched() -> None:
    chain = get_profile("ideal").build_chain("downlink")
    out = run_fake_clock(chain, [(i * 1e-3, Packet(b"x", i * 1e-3, i)) for i in range(10)])
    assert [p.time for p in out] == [i * 1e-3 for i in range(10)]


def test_profile_chain_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[float]:
        chain = get_profile("5g-congested").with_seed(seed).build_chain("downlink")
        arr = [(i * 2e-4, Packet(b"x" * 1200, i * 2e-4, i)) for i in range(3000)]
        return [p.time for p in run_fake_clock(chain, arr)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def _write(tmp_path: Path, body: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_user_file_with_shared_and_direction_fields(tmp_path: Path) -> None:
    trace = generate(PRESETS["lte-down"], 2.0, seed=1)
    trace.write(tmp_path / "t.trace")
    path = _write(
        tmp_path,
        """
[x]
description = "test"
source = "made up"
seed = 7
delay_ms = 10
[x.downlink]
trace = "t.trace"
loss = 0.01
[x.uplink]
jitter_ms = 2
loss = { model = "gilbert-elliott", p = 0.01, r = 0.5 }
queue = { kind = "codel", packets = 100 }
""",
    )
    p = get_profile(path)
    assert p.seed == 7 and p.downlink.delay_ms == 10 and p.uplink.delay_ms == 10
    assert p.downlink.trace == tmp_path / "t.trace"
    assert p.downlink.loss == {"model": "bernoulli", "p": 0.01}
    assert p.uplink.distribution == "uniform"
    assert get_profile(f"{path}:x") == p


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[x]\ndescription="d"\nsource="s"\n[x.downlink]\ndelay_ms="abc"\n',
            "my.toml: profile 'x', downlink.delay_ms: expected a number >= 0, got \"abc\"",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\njitter_ms=-1\n',
            "my.toml: profile 'x', link.jitter_ms: expected a number >= 0, got -1",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\n[x.uplink]\nloss=1.5\n',
            "profile 'x', uplink.loss: expected a number >= 0 and <= 1, got 1.5",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\nloss={model="gemodel"}\n',
            "profile 'x', link.loss.model: expected one of none, bernoulli",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\ndelay_msec=3\n',
            "profile 'x', link.delay_msec: expected a known field (delay_ms",
        ),
        ('[x]\nsource="s"\n', "profile 'x', description: expected a non-empty string, got None"),
        (
            '[x]\ndescription="d"\nsource="s"\ntrace="nope.trace"\n',
            "profile 'x', link.trace: expected an existing file, got \"nope.trace\"",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\ndistribution="zipf"\n',
            "link.distribution: expected one of constant, uniform, normal, pareto, empirical",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\noutages=[{start_ms=1}]\n',
            "link.outages[0].duration_ms: expected a number > 0, got None",
        ),
        (
            '[x]\ndescription="d"\nsource="s"\ncorrelation=1\n',
            "link.correlation: expected a number >= 0 and < 1, got 1",
        ),
        ("[x\n", "my.toml: not valid TOML"),
    ],
)
def test_bad_profile_file_names_file_profile_and_field(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ProfileError) as info:
        load_profiles(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_bad_trace_in_profile_reports_trace_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "1\n2\noops\n", "t.trace")
    path = _write(tmp_path, '[x]\ndescription="d"\nsource="s"\ntrace="t.trace"\n')
    with pytest.raises(ValueError, match=r"t\.trace:3: expected a non-negative integer"):
        load_profiles(path)


def test_unknown_profile_lists_known_names() -> None:
    with pytest.raises(ProfileError, match="unknown profile '6g'; known: ideal, wired"):
        get_profile("6g")


def test_file_with_several_profiles_needs_a_name(tmp_path: Path) -> None:
    path = _write(tmp_path, '[a]\ndescription="d"\nsource="s"\n[b]\ndescription="d"\nsource="s"\n')
    with pytest.raises(ProfileError, match="holds 2 profiles"):
        get_profile(path)
    assert get_profile(f"{path}:b").name == "b"


def test_wifi_profile_quantiles_match_its_source() -> None:
    # Sui et al.: p50 1.5 ms, p90 10 ms, p99 125 ms; check the model, not the FIFO.
    spec = get_profile("wifi").downlink
    chain = spec.build(1, "downlink")
    model = chain.stages[-1].model  # type: ignore[attr-defined]
    q = np.array([model.quantile(u) for u in (0.5, 0.9, 0.99)]) * 1e3
    assert q == pytest.approx([1.5, 10.0, 120.0], rel=0.1)
