"""A stream runs through every shipped network profile (relay on the media path)."""

from __future__ import annotations

import asyncio

import pytest

from cloudarcade.bench.leak import wait_until
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.netsim import load_profiles
from cloudarcade.server.app import SESSIONS

from .conftest import RunningServer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", list(load_profiles()))
async def test_stream_through_profile(server: RunningServer, profile: str) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile=profile))
    try:
        await client.connect()
        session = next(iter(server.app[SESSIONS].values()))
        assert session.options.profile == profile
        viewer = next(iter(session.viewers.values()))
        assert viewer.relay is not None, "no relay on the media path"
        await client.wait_for_frames(10, timeout=20)
        for _ in range(4):
            client.press("Space")
            await asyncio.sleep(0.25)  # pacing, not waiting: the presses are spread out

        def reflected() -> bool:
            return any(p.frame is not None for p in client.summary.probes)

        assert await wait_until(reflected, 10), f"no input came back through {profile}"
        stats = await viewer.relay.stats()
        assert stats.downlink.packets_out > 10 and stats.uplink.packets_out > 0
    finally:
        await client.close()
