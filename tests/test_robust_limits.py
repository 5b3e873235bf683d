"""Limits: the input rate limiter (fake clock), flood handling, ICE and idle timeouts."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from cloudarcade import protocol
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.metrics import REGISTRY
from cloudarcade.server.app import CONFIG, SESSIONS
from cloudarcade.server.limits import Limits, TokenBucket

from .conftest import RunningServer
from .test_robust_offer import _offer_sdp


def test_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=240, burst=480, now=100.0)
    assert sum(bucket.take(100.0) for _ in range(1000)) == 480
    assert not bucket.take(100.0)
    # 0.5 s later: 120 tokens back.
    assert sum(bucket.take(100.5) for _ in range(1000)) == 120
    # Sustained at exactly the rate: every message passes.
    now = 200.0
    bucket = TokenBucket(rate=240, burst=480, now=now)
    assert all(bucket.take(now + i / 240) for i in range(5000))


def test_bucket_refills_no_more_than_the_burst_and_ignores_a_clock_step_back() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    for _ in range(5):
        assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.tokens(1000.0) == 5
    assert bucket.take(1000.0)
    assert bucket.tokens(500.0) == 4  # time went back: no refill, no debt
    assert bucket.take(500.0)


def test_bucket_over_rate_passes_about_the_rate() -> None:
    bucket = TokenBucket(rate=240, burst=480, now=0.0)
    # 1000 msgs/s for 10 s: the burst plus 240/s get through.
    passed = sum(bucket.take(i / 1000) for i in range(10_000))
    assert 480 + 240 * 10 - 2 <= passed <= 480 + 240 * 10 + 1


@pytest.mark.parametrize("bad", [{"input_rate": 0}, {"input_burst": float("nan")},
                                 {"ice_timeout": -1}, {"max_viewers": 0}])
def test_limits_refuse_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Limits(**bad)  # type: ignore[arg-type]


def _counted(name: str, reason: str) -> float:
    """The server's counter ``name`` summed over label sets with this ``reason``."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == name:
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("reason") == reason:
                    total += sample.value
    return total


def _rejected(reason: str) -> float:
    return _counted("cloudarcade_inputs_rejected", reason)


async def _settle(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_flood_and_garbage_inputs_are_dropped_counted_and_logged_once(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "cloudarcade.server.session")
    server.app[CONFIG].limits = Limits(input_rate=50, input_burst=100)
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    session = next(iter(server.app[SESSIONS].values()))
    limited_before = _rejected("rate_limited")
    oversized_before = _rejected("oversized")
    channel = client._channels[protocol.CHANNEL_EVENTS]
    # Garbage of each kind the protocol names, then a flood of valid messages.
    for payload in ["x" * 2000, "not json", '{"v": 1, "t": "warp", "seq": 1, "ts": 0}',
                    '{"v": 1, "t": "key", "seq": 1, "ts": 0, "code": "A", "down": 3}']:
        channel.send(payload)
    for i in range(600):
        event = protocol.KeyEvent(seq=i + 1, ts=time.monotonic(), code="Space", down=i % 2 == 0)
        channel.send(protocol.encode(event))
    # Most of the flood is refused: all but the burst and what refilled while it
    # arrived (50/s; the bound allows 4 s of refill on a loaded machine).
    assert await _settle(lambda: _rejected("rate_limited") - limited_before >= 300, timeout=10)
    assert _rejected("oversized") - oversized_before == 1
    limited = _rejected("rate_limited") - limited_before
    # Never more than the flood minus the burst (the garbage may have taken 4 tokens).
    assert limited <= 600 - 100 + 4, limited
    messages = [r.getMessage() for r in caplog.records if "input rejected" in r.getMessage()]
    assert sum("rate_limited" in m for m in messages) == 1, messages
    # One line each: oversized, not_json, unknown_type, malformed, rate_limited.
    assert len(messages) == 5, messages
    # The session survived and keeps streaming.
    frames = client.summary.frames_decoded
    await client.wait_for_frames(frames + 5, timeout=10)
    assert session.viewers
    await client.close()
    assert await _settle(lambda: not server.app[SESSIONS])


async def test_a_viewer_that_never_connects_times_out(server: RunningServer) -> None:
    """An answered offer whose client never starts ICE is closed with "timeout"."""
    server.app[CONFIG].limits = Limits(ice_timeout=1.0)
    timeouts_before = _counted("cloudarcade_sessions_ended", "timeout")
    async with aiohttp.ClientSession() as http:
        body = {"type": "offer", "sdp": await _offer_sdp()}
        async with http.post(server.url + "/offer", json=body) as response:
            assert response.status == 200
    sessions = server.app[SESSIONS]
    assert len(sessions) == 1
    session = next(iter(sessions.values()))
    assert await _settle(lambda: not sessions, timeout=5)
    assert session.metrics.closed
    assert session.pipeline is None  # no game or encoder was ever built
    # Closed for the ICE timeout, not for another reason.
    assert _counted("cloudarcade_sessions_ended", "timeout") - timeouts_before == 1


async def test_an_idle_session_times_out(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(idle_timeout=1.5)
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    sessions = server.app[SESSIONS]
    # Input keeps it alive ...
    for _ in range(8):
        client.press("Space")
        await asyncio.sleep(0.25)
    assert sessions
    # ... silence ends it.
    assert await _settle(lambda: not sessions, timeout=5)
    await client.close()
