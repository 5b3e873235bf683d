"""The relay's trace origin, read by the bench from a live server session."""

from __future__ import annotations

import time

import aiohttp

from cloudarcade.bench.link_origin import downlink_origin, relay_origin
from cloudarcade.client.headless import ClientOptions, HeadlessClient

from .conftest import RunningServer


def test_downlink_origin_takes_the_first_viewer_with_one() -> None:
    answer = {"session": 3, "viewers": {
        "7": None,
        "8": {"uplink": {"origin": 1.0}, "downlink": {"origin": None}},
        "9": {"uplink": {"origin": 2.0}, "downlink": {"origin": 2.5}},
    }}
    assert downlink_origin(answer) == 2.5
    assert downlink_origin({"viewers": {"1": None}}) is None
    assert downlink_origin({"error": "no session 4"}) is None


async def test_a_session_on_a_trace_profile_tells_where_its_trace_started(
    server: RunningServer,
) -> None:
    before = time.monotonic()
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile="lte"))
    try:
        await client.connect()
        await client.wait_for_frames(1, timeout=15)
        origin = await relay_origin(server.url, client.session_id)
        # The first packet through the relay: after we started, before the first frame.
        assert origin is not None and before < origin < time.monotonic()
    finally:
        await client.close()


async def test_a_profile_without_a_trace_has_no_origin(server: RunningServer) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile="ideal"))
    try:
        await client.connect()
        await client.wait_for_frames(1, timeout=15)
        assert await relay_origin(server.url, client.session_id) is None
    finally:
        await client.close()


async def test_bad_session_ids_get_a_clear_error(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/sessions/abc/link") as response:
            assert response.status == 400
            assert "expected a decimal integer" in (await response.json())["error"]
        async with http.get(f"{server.url}/sessions/987654/link") as response:
            assert response.status == 404
            assert "no session 987654" in (await response.json())["error"]
    assert await relay_origin(server.url, 987654) is None
