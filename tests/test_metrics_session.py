"""Metric definitions and SessionMetrics: a simulated session, checked by real promtool."""

from __future__ import annotations

import re
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from cloudarcade.metrics import Metrics, NetsimMetrics, SessionMetrics
from cloudarcade.metrics.definitions import LATENCY_BUCKETS, input_reject_reasons
from cloudarcade.protocol import REJECT_REASONS
from cloudarcade.stages import STAGE_NAMES

from .prometheus_tools import prometheus_tool

ALLOWED_LABELS = {"game", "codec", "profile", "stage", "phase", "reason", "direction", "kind",
                  "cc", "rung"}
INFO_LABELS = {"version", "python", "aiortc", "av"}


def simulate(metrics: Metrics) -> None:
    """One session through every SessionMetrics method, plus a netsim link."""
    s = SessionMetrics(metrics, game="pong", codec="h264", profile="5g_good")
    s.bitrate(8e6, 0.0)
    for i in range(120):
        s.input_received()
        s.input_applied(0.004)
        s.frame_rendered(0.003, 0.0036)
        s.frame_encoded(0.007, 12_000, "start" if i == 0 else None)
        s.frame_sent(10, 12_400)
        s.stage("encode", 0.007)
        s.stages({"render": 0.003, "convert": 0.0036, "send": 0.0004})
    s.frame_encoded(0.009, 40_000, "pli")
    s.frame_dropped("encode_busy")
    s.rtp_sent(2, 2400)
    s.input_rejected("not_json")
    s.input_rejected("rate_limited")
    s.rtcp(0.021, 0.01)
    s.rtcp(None, 0.0)
    s.nack(3)
    s.pli()
    s.step_error("transport")
    s.bitrate(8e6, 7.2e6)
    s.client_report(
        decode_s=[0.002, 0.003],
        jitter_buffer_delay_s=[0.006],
        input_to_photon_s=[0.045, 0.051],
        stages={"downlink": 0.02, "decode": 0.002},
        freezes=1,
        fps=59.5,
    )
    s.close("closed")
    link = NetsimMetrics(metrics, profile="5g_good")
    link.packet("downlink")
    link.packet("uplink")
    link.dropped("downlink", "loss")
    link.queued("downlink", 0.0005)


def sample_value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels}"
    return value


def test_promtool_accepts_a_scrape_after_a_session() -> None:
    tool = prometheus_tool("promtool")
    metrics = Metrics(CollectorRegistry())
    simulate(metrics)
    scrape = generate_latest(metrics.registry)
    result = subprocess.run(
        [tool, "check", "metrics"], input=scrape, capture_output=True, timeout=30, check=False
    )
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not problems.strip(), problems


def test_session_counts_and_cleans_up() -> None:
    metrics = Metrics(CollectorRegistry())
    simulate(metrics)
    r = metrics.registry
    lv = {"game": "pong", "codec": "h264", "profile": "5g_good"}
    assert sample_value(r, "cloudarcade_sessions_started_total", **lv) == 1
    assert sample_value(r, "cloudarcade_sessions_active", **lv) == 0
    assert sample_value(r, "cloudarcade_sessions_ended_total", reason="closed", **lv) == 1
    assert sample_value(r, "cloudarcade_frames_encoded_total", **lv) == 121
    assert sample_value(r, "cloudarcade_encoded_bytes_total", **lv) == 120 * 12_000 + 40_000
    assert sample_value(r, "cloudarcade_rtp_packets_sent_total", **lv) == 1202
    assert sample_value(r, "cloudarcade_keyframes_total", reason="pli", **lv) == 1
    assert sample_value(r, "cloudarcade_rtc_step_errors_total", kind="transport", **lv) == 1
    assert sample_value(r, "cloudarcade_stage_seconds_count", stage="encode", **lv) == 120
    assert sample_value(r, "cloudarcade_stage_seconds_count", stage="downlink", **lv) == 1
    assert sample_value(r, "cloudarcade_input_to_photon_seconds_count", **lv) == 2
    assert sample_value(r, "cloudarcade_inputs_rejected_total", reason="rate_limited", **lv) == 1
    # A closed session takes its share of the summed bitrate gauges with it.
    assert sample_value(r, "cloudarcade_target_bitrate_bytes_per_second", **lv) == 0
    assert sample_value(r, "cloudarcade_actual_bitrate_bytes_per_second", **lv) == 0
    assert sample_value(r, "cloudarcade_netsim_drops_total", profile="5g_good",
                        direction="downlink", reason="loss") == 1  # fmt: skip


def test_bitrate_gauges_sum_over_sessions() -> None:
    metrics = Metrics(CollectorRegistry())
    a = SessionMetrics(metrics, game="g", codec="vp8", profile="lan")
    b = SessionMetrics(metrics, game="g", codec="vp8", profile="lan")
    a.bitrate(4e6, 3e6)
    b.bitrate(6e6, 5e6)
    a.bitrate(5e6, 4e6)
    lv = {"game": "g", "codec": "vp8", "profile": "lan"}
    r = metrics.registry
    assert sample_value(r, "cloudarcade_target_bitrate_bytes_per_second", **lv) == 11e6 / 8
    assert sample_value(r, "cloudarcade_sessions_active", **lv) == 2
    a.close("failed")
    a.close("closed")  # only the first close counts
    assert sample_value(r, "cloudarcade_actual_bitrate_bytes_per_second", **lv) == 5e6 / 8
    assert sample_value(r, "cloudarcade_sessions_active", **lv) == 1
    assert sample_value(r, "cloudarcade_sessions_ended_total", reason="failed", **lv) == 1
    assert sample_value(r, "cloudarcade_sessions_ended_total", reason="closed", **lv) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.frame_dropped("somewhere"), "drop phase 'somewhere'; known: render_skip"),
        (lambda s: s.input_rejected("bad"), "input reject reason 'bad'; known:"),
        (lambda s: s.frame_encoded(0.01, 10, "whim"), "keyframe reason 'whim'; known: start"),
        (lambda s: s.stage("warp", 0.1), "stage 'warp'; known: uplink"),
        (lambda s: s.close("bored"), "session end reason 'bored'; known: closed"),
    ],
)
def test_unknown_label_values_are_refused(call: object, message: str) -> None:
    s = SessionMetrics(Metrics(CollectorRegistry()), game="g", codec="h264", profile="lan")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(s)  # type: ignore[operator]


def test_names_units_and_bounded_labels() -> None:
    metrics = Metrics(CollectorRegistry())
    simulate(metrics)
    families = list(metrics.registry.collect())
    assert len(families) >= 30
    for family in families:
        assert family.name.startswith("cloudarcade_"), family.name
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram" and family.name.endswith("_seconds"):
            les = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
            assert les[:-1] == list(LATENCY_BUCKETS), family.name
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            allowed = INFO_LABELS if family.name == "cloudarcade_build" else ALLOWED_LABELS
            assert labels <= allowed, (sample.name, labels)
    stages = {
        s.labels["stage"]
        for f in families
        if f.name == "cloudarcade_stage_seconds"
        for s in f.samples
    }
    assert stages == set(STAGE_NAMES)
    info = next(f for f in families if f.name == "cloudarcade_build").samples[0]
    assert info.name == "cloudarcade_build_info" and set(info.labels) == INFO_LABELS


def test_reject_reasons_cover_the_protocol() -> None:
    reasons = input_reject_reasons()
    assert {"oversized", "not_json", "malformed", "unsupported_version", "unknown_type",
            "out_of_range", "rate_limited"} <= set(reasons)  # fmt: skip
    assert set(REJECT_REASONS) <= set(reasons)


def test_fresh_sets_do_not_collide() -> None:
    a, b = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    SessionMetrics(a, game="g", codec="h264", profile="lan").frame_sent()
    lv = {"game": "g", "codec": "h264", "profile": "lan"}
    assert sample_value(a.registry, "cloudarcade_frames_sent_total", **lv) == 1
    assert b.registry.get_sample_value("cloudarcade_frames_sent_total", lv) is None


def test_bench_prints_the_cost_per_frame(capsys: pytest.CaptureFixture[str]) -> None:
    from cloudarcade.metrics.bench import main

    main(["--frames", "200", "--repeats", "1"])
    out = capsys.readouterr().out
    # The figures themselves: a positive cost and its share of the frame budget.
    match = re.search(r"median ([\d,]+) ns/frame.*\n\s*= ([\d.]+) % of a 16\.7 ms frame budget",
                      out)
    assert match, out
    assert float(match[1].replace(",", "")) > 0 and float(match[2]) > 0, out


def test_every_relay_drop_reason_is_a_metric_label() -> None:
    """A reason the relay reports (like a failed send) must not crash the metrics."""
    from prometheus_client import CollectorRegistry

    from cloudarcade.metrics import Metrics, NetsimMetrics
    from cloudarcade.netsim.packet import DROP_REASONS

    metrics = Metrics(CollectorRegistry())
    netsim = NetsimMetrics(metrics, profile="lte")
    assert DROP_REASONS
    for reason in DROP_REASONS:
        netsim.dropped("downlink", reason, 2)
    for reason in DROP_REASONS:
        assert sample_value(metrics.registry, "cloudarcade_netsim_drops_total", profile="lte",
                            direction="downlink", reason=reason) == 2, reason
