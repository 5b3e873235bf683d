"""Congestion-control metrics: per-viewer shares of the summed gauges, queueing delay."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from cloudarcade.metrics import Metrics, SessionMetrics


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(
        name, {"game": "terrain", "codec": "h264", "profile": "lte", "cc": "gcc"}
    )


def test_cc_gauges_sum_viewers_and_drop_them() -> None:
    metrics = Metrics(CollectorRegistry())
    session = SessionMetrics(metrics, game="terrain", codec="h264", profile="lte", cc="gcc")
    session.cc_update(1, 2_000_000, 3_000_000, 0.020)
    session.cc_update(2, 1_000_000, 1_000_000, 0.040)
    session.cc_update(1, 4_000_000, 5_000_000, 0.010, 0.030)
    registry = metrics.registry
    assert _value(registry, "cloudarcade_cc_target_bitrate_bytes_per_second") == 625_000
    assert _value(registry, "cloudarcade_cc_estimate_bitrate_bytes_per_second") == 750_000
    assert _value(registry, "cloudarcade_cc_queueing_delay_seconds_count") == 3
    assert _value(registry, "cloudarcade_cc_predicted_queueing_seconds_sum") == 0.030
    assert _value(registry, "cloudarcade_cc_feedback_received_total") == 3
    session.cc_viewer_gone(2)
    assert _value(registry, "cloudarcade_cc_target_bitrate_bytes_per_second") == 500_000
    session.close("closed")
    assert _value(registry, "cloudarcade_cc_target_bitrate_bytes_per_second") == 0
    assert _value(registry, "cloudarcade_cc_estimate_bitrate_bytes_per_second") == 0


def test_ladder_rung_gauge_moves_with_the_session_and_counts_steps() -> None:
    metrics = Metrics(CollectorRegistry())
    session = SessionMetrics(metrics, game="terrain", codec="h264", profile="lte", cc="gcc")
    labels = {"game": "terrain", "codec": "h264", "profile": "lte"}

    def value(name: str, **extra: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels | extra)

    session.rung(0)
    session.rung(2)
    session.rung(2)
    session.rung(1)
    assert value("cloudarcade_ladder_sessions", rung="0") == 0
    assert value("cloudarcade_ladder_sessions", rung="1") == 1
    assert value("cloudarcade_ladder_steps_total", direction="down") == 1
    assert value("cloudarcade_ladder_steps_total", direction="up") == 1
    session.close("closed")
    assert value("cloudarcade_ladder_sessions", rung="1") == 0


def test_fec_columns_sum_viewers_and_parity_is_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    session = SessionMetrics(metrics, game="terrain", codec="h264", profile="lte", cc="gcc")
    labels = {"game": "terrain", "codec": "h264", "profile": "lte"}

    def value(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    session.fec_columns(1, 4)
    session.fec_columns(2, 2)
    session.fec_columns(1, 5)
    session.fec_parity(5, 6_000)
    assert value("cloudarcade_fec_columns") == 7
    assert value("cloudarcade_fec_packets_sent_total") == 5
    assert value("cloudarcade_fec_bytes_sent_total") == 6_000
    session.fec_columns(2, 0)
    assert value("cloudarcade_fec_columns") == 5
    session.close("closed")
    assert value("cloudarcade_fec_columns") == 0
