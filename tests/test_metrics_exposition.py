"""GET /metrics over a real aiohttp server on 127.0.0.1: content negotiation."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry

from cloudarcade.metrics import Metrics, SessionMetrics, bound_port, start_metrics_server

OPENMETRICS = "application/openmetrics-text"
# What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


async def fetch(port: int, accept: str | None) -> tuple[str, str]:
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as client:
        url = f"http://127.0.0.1:{port}/metrics"
        async with client.get(url, headers=headers) as response:
            assert response.status == 200
            return response.headers["Content-Type"], await response.text()


async def test_negotiates_openmetrics_and_text() -> None:
    metrics = Metrics(CollectorRegistry())
    SessionMetrics(metrics, game="g", codec="h264", profile="lan").frame_sent(3, 3000)
    runner = await start_metrics_server("127.0.0.1", 0, metrics.registry)
    try:
        port = bound_port(runner)
        for accept in (OPENMETRICS, PROMETHEUS_ACCEPT):
            content_type, body = await fetch(port, accept)
            assert content_type.startswith(OPENMETRICS), content_type
            assert body.rstrip().endswith("# EOF")
            assert "# TYPE cloudarcade_frames_sent counter" in body
            assert 'cloudarcade_frames_sent_total{codec="h264",game="g",profile="lan"} 1.0' in body

        for plain in (None, "text/plain", "*/*"):
            content_type, body = await fetch(port, plain)
            assert content_type.startswith("text/plain; version=0.0.4"), content_type
            assert "# EOF" not in body
            assert "# TYPE cloudarcade_frames_sent_total counter" in body
            assert (
                'cloudarcade_rtp_packets_sent_total{codec="h264",game="g",profile="lan"} 3.0'
                in body
            )
            assert "cloudarcade_build_info{" in body
    finally:
        await runner.cleanup()
