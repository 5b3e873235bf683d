"""Bottleneck links, queues, traces and outages on a fake clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloudarcade.netsim.link import RateStage, TraceStage, create_link
from cloudarcade.netsim.outage import Blackout, OutageStage
from cloudarcade.netsim.packet import Packet
from cloudarcade.netsim.queue import CoDel, DropTail, create_queue
from cloudarcade.netsim.rng import BlockDraws, make_rng
from cloudarcade.netsim.stage import run_fake_clock
from cloudarcade.netsim.trace import Trace, load_trace, parse_trace
from cloudarcade.netsim.tracegen import PRESETS, generate


def _flood(n: int, size: int, gap: float) -> list[tuple[float, Packet]]:
    return [(i * gap, Packet(b"x" * size, i * gap, i)) for i in range(n)]


def _throughput_bps(out: list[Packet], overhead: int) -> float:
    # Rate over the departures: bits after the first departure / time span.
    times = np.array([p.time for p in out])
    bits = sum((p.size + overhead) * 8 for p in out[1:])
    return float(bits / (times[-1] - times[0]))


def test_rate_link_delivers_configured_rate_within_2pct() -> None:
    link = RateStage(20e6, DropTail(packets=None))
    out = run_fake_clock(link, _flood(5000, 1200, 0.0001))  # 96 Mbps offered
    assert len(out) == 5000
    assert _throughput_bps(out, 28) == pytest.approx(20e6, rel=0.02)


def test_rate_link_serialisation_time_per_packet() -> None:
    link = create_link("rate", rate_mbps=8, overhead=0)
    out = run_fake_clock(link, [(0.0, Packet(b"x" * 1000, 0.0))])
    assert out[0].time == pytest.approx(0.001)  # 8000 bits at 8 Mbps


def test_droptail_packet_limit_drops_with_reason_queue() -> None:
    link = RateStage(1e6, DropTail(packets=10))
    out = run_fake_clock(link, _flood(100, 1000, 0.0))
    assert len(out) == 11  # 10 queued + 1 in service
    assert link.drop_counts["queue"] == 89


def test_droptail_byte_limit() -> None:
    q = create_queue("droptail", bytes=2500)
    assert q.enqueue(Packet(b"x" * 1000, 0), 0) and q.enqueue(Packet(b"x" * 1000, 0), 0)
    assert not q.enqueue(Packet(b"x" * 1000, 0), 0)


def test_codel_keeps_standing_queue_near_target() -> None:
    # 10% overload for 8 s: drop-tail builds a standing queue that keeps growing;
    # CoDel drops until the sojourn settles near its 5 ms target. (Against a
    # 2x unresponsive overload CoDel needs many seconds to ramp its drop rate.)
    gap = 1000 * 8 / 5.5e6
    n = int(8.0 / gap)
    link = RateStage(5e6, CoDel(), overhead=0)
    out = run_fake_clock(link, _flood(n, 1000, gap))
    late = np.array([p.queue_delay for p in out if p.arrival > 5.0])
    assert link.drop_counts["queue"] > 100
    assert np.median(late) < 0.03
    tail = RateStage(5e6, DropTail(), overhead=0)
    out_dt = run_fake_clock(tail, _flood(n, 1000, gap))
    assert np.median([p.queue_delay for p in out_dt if p.arrival > 5.0]) > 0.3


def test_unknown_queue_names_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown queue 'red'; known: droptail, codel"):
        create_queue("red")


def test_trace_link_delivers_trace_mean_rate(tmp_path: Path) -> None:
    trace = generate(PRESETS["lte-down"], 5.0, seed=2)
    path = tmp_path / "lte.trace"
    trace.write(path)
    loaded = load_trace(path)
    assert loaded.times_ms == trace.times_ms
    link = TraceStage(loaded, DropTail(packets=None), overhead=0)
    # Offer well above capacity for two full periods, packets of exactly 1500 B.
    n = int(loaded.mean_rate_bps * 10.0 / 12000 * 1.5)
    out = run_fake_clock(link, _flood(n, 1500, 10.0 / n), until=10.0)
    span_bits = len(out) * 1500 * 8
    assert span_bits / 10.0 == pytest.approx(loaded.mean_rate_bps, rel=0.02)


def test_trace_packet_spans_opportunities_and_unused_bytes_are_lost() -> None:
    trace = Trace((1, 2, 3, 4))
    link = TraceStage(trace, overhead=0, origin=0.0)
    # 2000 B needs two opportunities (1 ms, 2 ms); the 1000 B left at 2 ms go unused
    # by the next packet only if it has not arrived yet.
    out = run_fake_clock(
        link, [(0.0, Packet(b"x" * 2000, 0.0, 1)), (0.0025, Packet(b"y" * 100, 0.0025, 2))]
    )
    assert [round(p.time * 1e3, 6) for p in out] == [2.0, 3.0]


def test_trace_loops_with_its_last_timestamp_as_period() -> None:
    link = TraceStage(Trace((5, 10)), overhead=0, origin=0.0)
    out = run_fake_clock(link, [(0.0101, Packet(b"x", 0.0101))])
    assert out[0].time == pytest.approx(0.015)  # next cycle: 10 + 5 ms


def test_trace_loader_validates_mahimahi_traces_by_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trace"
    bad.write_text("1\n2\nx3\n")
    with pytest.raises(ValueError, match=r"bad\.trace:3: expected a non-negative integer"):
        load_trace(bad)
    bad.write_text("5\n4\n")
    with pytest.raises(ValueError, match=r"bad\.trace:2: timestamps must not decrease"):
        load_trace(bad)
    bad.write_text("")
    with pytest.raises(ValueError, match=r"bad\.trace: empty trace"):
        load_trace(bad)
    with pytest.raises(ValueError, match=r"<s>:1: the last timestamp"):
        parse_trace("0\n", "<s>")
    with pytest.raises(ValueError, match=r"missing\.trace: cannot read"):
        load_trace(tmp_path / "missing.trace")


def test_tracegen_is_seeded_and_near_model_mean() -> None:
    a = generate(PRESETS["lte-up"], 60.0, seed=4)
    b = generate(PRESETS["lte-up"], 60.0, seed=4)
    assert a == b and a.period_ms == 60_000
    assert a.mean_rate_bps / 1e6 == pytest.approx(PRESETS["lte-up"].mean_mbps, rel=0.25)


def test_scheduled_blackout_drops_with_reason_outage() -> None:
    stage = OutageStage([Blackout(start=1.0, duration=0.1, period=2.0)], origin=0.0)
    out = run_fake_clock(stage, _flood(5000, 100, 0.001))
    assert stage.drop_counts["outage"] == 200  # [1.0, 1.1) and [3.0, 3.1), 1 ms apart
    assert len(out) == 4800


def test_random_outages_are_seeded_poisson() -> None:
    def run(seed: int) -> int:
        stage = OutageStage(
            mean_interval=1.0, duration=0.05, draws=BlockDraws(make_rng(seed, "o")), origin=0.0
        )
        run_fake_clock(stage, _flood(100_000, 10, 0.001))
        return stage.drop_counts["outage"]

    # ~100 outages of 50 ms in 100 s: ~5% of packets, Poisson spread.
    assert run(1) == run(1)
    assert 0.02 < run(1) / 100_000 < 0.09


def test_trace_loader_rejects_non_ascii_digits_with_file_and_line() -> None:
    with pytest.raises(ValueError, match=r"^t\.trace:2: expected a non-negative integer"):
        parse_trace("1\n²\n", "t.trace")
