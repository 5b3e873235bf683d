"""End to end: on a 2 Mbit/s link the sender's target falls below the limit and video keeps coming,
through a step down the resolution ladder.

Real WebRTC on 127.0.0.1 through the netsim relay, the realistic-load game
(terrain) asking for 12 Mbit/s (the controller starts at a quarter of that,
3 Mbit/s, above the link), the Python client sending transport-cc feedback.
Generous bounds and no timing asserts: how fast it adapts is the bench's job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.netsim.profile import LinkSpec, Profile
from cloudarcade.server.app import CONFIG, SESSIONS
from cloudarcade.server.ladder import Ladder, build_rungs

from .conftest import RunningServer

pytestmark = pytest.mark.slow

LIMIT = 2_000_000


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_target_falls_below_a_2_mbit_link_and_video_keeps_decoding(
    server: RunningServer,
) -> None:
    server.app[CONFIG].profiles["cap-2m"] = Profile(
        name="cap-2m", description="2 Mbit/s down, 10 ms each way", source="test",
        uplink=LinkSpec(delay_ms=10.0),
        downlink=LinkSpec(delay_ms=10.0, rate_mbps=LIMIT / 1e6,
                          queue={"kind": "droptail", "packets": 200}),
    )
    client = HeadlessClient(ClientOptions(
        url=server.url, game="terrain", resolution="640x360", fps=30, bitrate="12M",
        profile="cap-2m", cc="gcc",
    ))
    await client.connect()
    try:
        session = next(iter(server.app[SESSIONS].values()))
        [viewer] = session.viewers.values()
        congestion = viewer.congestion
        assert congestion is not None and congestion.name == "gcc"
        assert congestion.state().target > LIMIT  # it starts above the link
        await client.wait_for_frames(10, timeout=30)
        assert await _until(lambda: congestion.state().target < LIMIT, timeout=30), (
            congestion.state()
        )
        # The encoder follows the target (in place, between frames).
        encoder = session.pipeline.sink.encoder
        assert await _until(lambda: encoder.bitrate < LIMIT, timeout=10), encoder.bitrate
        step = congestion.step
        assert step is not None and step.feedback_packets > 0
        decoded = client.summary.frames_decoded
        assert await _until(lambda: client.summary.frames_decoded >= decoded + 60, timeout=30)
        assert congestion.state().target < 1.25 * LIMIT
        receiver = client.receiver_stats
        assert receiver is not None and receiver["transport_feedback_sent"] > 0

        # The ladder: 2 Mbit/s is plenty for 360p30 at the shipped thresholds, so
        # ask for more bits per pixel than that: it steps down (to 480x270, or
        # 320x180 on a dip of the target), the encoder reopens at that size, and
        # the client decodes it, frame code and all.
        assert session.ladder is not None and str(session.pipeline.rung) == "640x360@30"
        session.ladder = Ladder(build_rungs(640, 360, 30), down_bpp=0.4, up_bpp=0.9,
                                start_grace=0.0)
        assert await _until(lambda: client.latest_frame.width < 640, timeout=30), (
            congestion.state(), session.pipeline.rung)
        decoded, unread = client.summary.frames_decoded, client.summary.undecodable_codes
        assert await _until(lambda: client.summary.frames_decoded >= decoded + 30, timeout=30)
        size = (client.latest_frame.width, client.latest_frame.height)
        assert size in {(480, 270), (320, 180)}
        assert client.summary.undecodable_codes - unread < 3
    finally:
        await client.close()
