"""Metrics of a real running server with a real client connected, checked by promtool."""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloudarcade import protocol
from cloudarcade.bench.leak import wait_until
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.metrics import REGISTRY

from .conftest import RunningServer
from .prometheus_tools import prometheus_tool

pytestmark = pytest.mark.slow


def _samples(text: str) -> dict[str, float]:
    """name{labels} → value, summed over labels, for the families we check."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


async def test_promtool_accepts_a_real_scrape_with_a_client(server: RunningServer) -> None:
    promtool = prometheus_tool("promtool")
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(20, timeout=15)
    def count(name: str) -> float:
        return _samples(generate_latest(REGISTRY).decode()).get(name, 0.0)

    received = count("cloudarcade_inputs_received_total")
    duplicates = count("cloudarcade_inputs_discarded_total")
    for _ in range(5):
        client.press("Space")
        await asyncio.sleep(0.05)  # pacing the presses
    # Every key event (down and up) is sent once reliably and as copies on the
    # unreliable channel; wait until all the copies have arrived, then scrape.
    copies = len(protocol.KEY_COPY_DELAYS)
    assert await wait_until(
        lambda: count("cloudarcade_inputs_discarded_total") >= duplicates + 10 * copies, 5)
    # The game got each of the ten events once.
    assert count("cloudarcade_inputs_received_total") == received + 10
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    await client.close()

    check = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True,
        text=True, timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    samples = _samples(text)
    assert samples["cloudarcade_frames_encoded_total"] >= 20
    assert samples["cloudarcade_frames_sent_total"] >= 20
    assert samples["cloudarcade_inputs_received_total"] >= 10  # 5 presses, down + up
    assert samples["cloudarcade_inputs_discarded_total"] >= 10 * copies
    assert samples["cloudarcade_encode_seconds_count"] >= 20
    assert samples["cloudarcade_stage_seconds_count"] > 0
    assert samples["cloudarcade_sessions_started_total"] >= 1
    # A refused offer (unknown game) is counted before any session exists.
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/offer", json={"type": "offer", "sdp": "v=0",
                                                           "game": "tetris"}) as response:
            assert response.status == 400
        async with http.get(server.url + "/metrics") as response:
            after = _samples(await response.text())
    refused = "cloudarcade_offers_refused_total"
    assert after[refused] == samples.get(refused, 0) + 1
    # No session or frame ids among the labels.
    assert "session=" not in text and "frame_id" not in text
