"""Chromium gets the same adaptation: it sends transport-cc feedback, the target falls below
a 1 Mbit/s link, and the page keeps decoding.

Real headless Chromium (Debian's, through Playwright) against a real server whose
sessions all go through a 1 Mbit/s netsim relay. Generous bounds, no timing asserts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from playwright.async_api import Browser, async_playwright

from cloudarcade.netsim import load_profiles
from cloudarcade.netsim.profile import LinkSpec, Profile
from cloudarcade.server.app import SESSIONS, ServerConfig
from cloudarcade.server.options import SessionOptions

from .conftest import start_server
from .test_browser import (
    CHROMIUM_FLAGS,
    _chromium,
    _frames_beyond,
    _frames_decoded,
    _open,
    _state,
    _until,
)

pytestmark = pytest.mark.slow

LIMIT = 1_000_000


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=_chromium(),
                                                    args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_chromium_feedback_steers_the_target_below_the_link(chromium: Browser) -> None:
    cap = Profile(
        name="cap-1m", description="1 Mbit/s down, 10 ms each way", source="test",
        uplink=LinkSpec(delay_ms=10.0),
        downlink=LinkSpec(delay_ms=10.0, rate_mbps=LIMIT / 1e6,
                          queue={"kind": "droptail", "packets": 150}),
    )
    config = ServerConfig(
        defaults=replace(SessionOptions(game="swarm", width=640, height=360, fps=30,
                                        bitrate=8_000_000), profile="cap-1m"),
        profiles={**load_profiles(), "cap-1m": cap},
    )
    server = await start_server(config)
    try:
        # The bench opens the page with the session's settings in its URL.
        page = await _open(chromium, server.url + "/?cc=gcc&ladder=off")
        for name, value in {"game": "swarm", "resolution": "640x360", "fps": "30",
                            "codec": "h264", "bitrate": "8M"}.items():
            await page.select_option(f"#{name}", value)
        await page.click("#connect")
        await _state(page, "playing")
        [session] = server.app[SESSIONS].values()
        assert session.options.ladder is False
        [viewer] = session.viewers.values()
        congestion = viewer.congestion
        assert congestion is not None and congestion.name == "gcc"
        assert congestion.state().target > LIMIT  # it starts at a quarter of 8M
        # Chromium's own transport-cc feedback reaches the controller...
        assert await _until(lambda: congestion.step is not None
                            and congestion.step.feedback_packets > 20, within=30)
        # ...which brings the target under the link, and the page keeps decoding.
        assert await _until(lambda: congestion.state().target < LIMIT, within=30), (
            congestion.state())
        decoded = await _frames_decoded(page)
        await _frames_beyond(page, decoded + 30, within=30)
    finally:
        await server.runner.cleanup()
