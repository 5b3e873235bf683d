"""A real server and the headless client over WebRTC on 127.0.0.1: no mocks."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time

import aiohttp
import pytest

from cloudarcade.client.headless import ClientError, ClientOptions, HeadlessClient
from cloudarcade.server.app import CONFIG, SESSIONS
from cloudarcade.server.games import available_games
from cloudarcade.server.games.probe import marker_rect, marker_state
from cloudarcade.server.limits import Limits

from .conftest import RunningServer
from .test_robust_offer import _offer_sdp

pytestmark = pytest.mark.slow


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def _new_threads(before: set[int | None]) -> list[str]:
    # The loop's default executor ("asyncio_N") lives as long as the loop.
    return [t.name for t in threading.enumerate()
            if t.ident not in before and not t.name.startswith("asyncio_")]


def _counters(game: str) -> dict[str, float]:
    """The server's frame counters for ``game``, summed over its label sets."""
    from cloudarcade.metrics import REGISTRY

    names = {"cloudarcade_frames_rendered": "rendered", "cloudarcade_frames_encoded": "encoded",
             "cloudarcade_frames_sent": "sent"}
    out = dict.fromkeys(names.values(), 0.0)
    for metric in REGISTRY.collect():
        if metric.name in names:
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("game") == game:
                    out[names[metric.name]] += sample.value
    return out


async def _settle(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("stack", ["tuned", "stock"])
async def test_stream_frames_inputs_and_clean_close(server: RunningServer, stack: str) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    sockets_before = _open_sockets()
    tasks_before = set(asyncio.all_tasks())

    client = HeadlessClient(ClientOptions(url=server.url, game="probe", stack=stack))
    await client.connect()
    assert len(server.app[SESSIONS]) == 1
    # ICE stays on 127.0.0.1: host candidates only, no STUN (srflx) or relay ones.
    for sdp in (client.pc.localDescription.sdp, client.pc.remoteDescription.sdp):
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
        assert candidates
        for line in candidates:
            assert " 127.0.0.1 " in line and "typ host" in line, line
    await client.wait_for_frames(10, timeout=15)

    # Frame ids read from the pixels increase.
    ids = list(client.summary.frame_ids)
    assert len(ids) >= 5
    assert all(b > a for a, b in itertools.pairwise(ids)), ids

    # An input changes the probe marker within a bounded number of frames.
    def marker() -> bool | None:
        frame = client.latest_frame
        assert frame is not None
        from cloudarcade.framecode import luma_view

        return marker_state(luma_view(frame), frame.width, frame.height)

    before = marker()
    assert before is not None
    seq = client.press("Space")
    assert await _settle(lambda: client.summary.probes[-1].frame is not None, timeout=5)
    probe = client.summary.probes[-1]
    assert probe.seq == seq and probe.frame is not None
    # The first frame that answers the press, and the marker it flipped.
    assert probe.frame.input_seq >= seq
    assert await _settle(lambda: marker() == (not before), timeout=5)
    # Measured on one clock: positive, and in seconds, not stuck (bench measures how fast).
    assert probe.input_to_photon is not None and 0 < probe.input_to_photon < 10.0

    # Server records joined with decoded frames give a frame latency.
    assert await _settle(lambda: len(client.summary.frame_latencies) > 0)
    assert all(0 < x < 10.0 for x in client.summary.frame_latencies)

    await client.close()
    assert await _settle(lambda: len(server.app[SESSIONS]) == 0), "session not reclaimed"
    assert await _settle(lambda: not _new_threads(threads_before)), _new_threads(threads_before)
    assert await _settle(lambda: _open_sockets() <= sockets_before), (
        _open_sockets(), sockets_before)
    leftover = [t for t in asyncio.all_tasks() - tasks_before if not t.done()]
    assert await _settle(
        lambda: not [t for t in asyncio.all_tasks() - tasks_before
                     if not t.done() and t is not asyncio.current_task()]
    ), leftover


async def test_spectator_shares_the_session_encoded_once(server: RunningServer) -> None:
    player = HeadlessClient(ClientOptions(url=server.url, game="pong"))
    await player.connect()
    assert player.role == "player" and player.player == 0 and player.share
    spectator = HeadlessClient(
        ClientOptions(url=server.url, join=player.share, role="spectator")
    )
    await spectator.connect()
    assert spectator.role == "spectator" and spectator.player is None
    assert spectator.session_id == player.session_id
    sessions = server.app[SESSIONS]
    assert len(sessions) == 1
    session = next(iter(sessions.values()))
    assert len(session.viewers) == 2
    await spectator.wait_for_frames(10, timeout=15)
    await player.wait_for_frames(10, timeout=15)
    # One encoder: while both watch, the server's own counters show as many
    # encodes as renders, and a send of each frame to each of the two viewers.
    # Encoding per viewer would double the encodes, wherever it happened.
    before = _counters("pong")
    start = player.summary.frames_decoded
    await player.wait_for_frames(start + 15, timeout=15)
    after = _counters("pong")
    rendered, encoded, sent = (after[k] - before[k] for k in ("rendered", "encoded", "sent"))
    assert rendered >= 10, (before, after)
    assert encoded <= rendered + 1, (rendered, encoded)
    assert sent >= 1.5 * encoded, (encoded, sent)  # both viewers are served
    # The spectator's frame ids come from the same stream as the player's.
    assert set(spectator.summary.frame_ids) & set(player.summary.frame_ids)
    # A second player takes pong's other paddle.
    second = HeadlessClient(ClientOptions(url=server.url, join=player.share))
    await second.connect()
    assert second.role == "player" and second.player == 1
    # Pong has two paddles: a third joiner asking to play becomes a spectator.
    third = HeadlessClient(ClientOptions(url=server.url, join=player.share))
    await third.connect()
    assert third.role == "spectator" and third.player is None
    assert third.session_id == player.session_id and len(session.viewers) == 4
    await third.wait_for_frames(3, timeout=15)
    # The per-session viewer limit: with four viewers in a session of at most
    # four, a fifth is refused with 503 and a Retry-After, and nothing changes.
    server.app[CONFIG].limits = Limits(max_viewers=4)
    async with aiohttp.ClientSession() as http:
        offer = {"type": "offer", "sdp": await _offer_sdp(), "join": player.share,
                 "role": "spectator"}
        async with http.post(server.url + "/offer", json=offer) as response:
            assert response.status == 503, await response.text()
            assert response.headers.get("Retry-After") == "5"
            assert "session full: 4 viewers" in (await response.json())["error"]
    assert len(session.viewers) == 4 and len(sessions) == 1
    await third.close()
    await second.close()
    await spectator.close()
    assert await _settle(lambda: len(session.viewers) == 1)
    await player.close()
    assert await _settle(lambda: len(sessions) == 0)


async def test_unknown_profile_lists_known_ones(server: RunningServer) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, profile="6g"))
    with pytest.raises(ClientError, match="known profiles: ideal, wired"):
        await client.connect()
    await client.close()


async def test_unknown_share_token_is_404(server: RunningServer) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, join="nope"))
    with pytest.raises(ClientError, match=r"404.*share token"):
        await client.connect()
    await client.close()


async def test_unknown_game_is_refused_with_known_names(server: RunningServer) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, game="tetris"))
    with pytest.raises(ClientError, match="known games: probe, pong, swarm"):
        await client.connect()
    await client.close()
    assert len(server.app[SESSIONS]) == 0


def test_marker_rect_is_inside_frame() -> None:
    rect = marker_rect(640, 360)
    assert rect.width > 32 and rect.right <= 640 and rect.bottom <= 360


async def test_stream_through_a_netsim_profile(server: RunningServer) -> None:
    """A 20 ms each-way profile on the media path shows up in the input-to-photon delay;
    FEC parity stays off on a lossless profile and rebuilds lost packets on a lossy one."""
    from cloudarcade.netsim.profile import LinkSpec, Profile

    server.app[CONFIG].profiles["test-20ms"] = Profile(
        name="test-20ms", description="constant 20 ms each way", source="test",
        uplink=LinkSpec(delay_ms=20.0), downlink=LinkSpec(delay_ms=20.0),
    )
    # Bursty loss (about 7 %, bursts of 2 on average) on the way to the client, under
    # the 10 % at which the controller's loss-based rate (and the packet rate) falls.
    server.app[CONFIG].profiles["test-loss"] = Profile(
        name="test-loss", description="bursty downlink loss", source="test",
        uplink=LinkSpec(delay_ms=5.0),
        downlink=LinkSpec(delay_ms=5.0, loss={"model": "gilbert-elliott", "p": 0.04, "r": 0.5}),
    )
    results = {}
    for name in ("ideal", "test-20ms"):
        client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile=name))
        await client.connect()
        session = next(iter(server.app[SESSIONS].values()))
        assert session.options.profile == name
        assert session.viewers and all(v.relay is not None for v in session.viewers.values())
        await client.wait_for_frames(5, timeout=15)
        for _ in range(8):
            client.press("Space")
            await asyncio.sleep(0.15)  # pacing, one press per few frames

        def answered(client: HeadlessClient = client) -> list[float]:
            return [p.input_to_photon for p in client.summary.probes if p.input_to_photon]

        assert await _settle(lambda: len(answered()) >= 6), len(answered())
        done = answered()
        results[name] = sorted(done)[len(done) // 2]
        [viewer] = session.viewers.values()
        # The Python client asked for FEC; without loss not one parity packet is sent.
        assert viewer.fec is not None and viewer.fec.step.encoder.packets_sent == 0
        await client.close()
        assert await _settle(lambda: len(server.app[SESSIONS]) == 0)
    # 20 ms up + 20 ms down = +40 ms: the profile's delay shows (the lower bound
    # is the effect, with room for the ~8 ms sd that the 33 ms tick phase gives
    # a median of 8 presses; the upper one only catches a wildly wrong delay).
    added = results["test-20ms"] - results["ideal"]
    assert 0.015 < added < 0.040 + 0.250, results

    # fec "on": parity from the first frame (how "auto" turns on is FecPolicy's unit
    # test; waiting for it here costs seconds at this in-process server's packet rate).
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", fec="on",
                                          profile="test-loss"))
    await client.connect()
    try:
        [viewer] = next(iter(server.app[SESSIONS].values())).viewers.values()
        assert viewer.fec is not None

        def recovered() -> int:
            stats = client.receiver_stats
            return stats["fec_recovered"] if stats else 0

        assert await _settle(lambda: recovered() >= 1, timeout=20), client.receiver_stats
        assert viewer.fec.step.encoder.packets_sent > 0 and viewer.fec.policy.columns() >= 1
        stats = client.receiver_stats
        assert stats is not None and stats["fec_parity_received"] > 0
        assert stats["fec_parity_errors"] == 0 and stats["decode_errors"] == 0
    finally:
        await client.close()


async def test_catalog_lists_what_a_client_may_ask_for(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/catalog") as response:
        assert response.status == 200
        body = await response.json()
    assert body["games"] == list(available_games())  # the registry, in its order
    assert body["games"][:3] == ["probe", "pong", "swarm"]
    assert body["ccs"] == ["gcc", "none"] and body["defaults"]["cc"] == "gcc"
    assert "h264" in body["codecs"] and "vp8" in body["codecs"]
    assert {"ideal", "5g-sa", "lte"} <= set(body["profiles"])
    assert body["defaults"]["game"] == "probe" and body["defaults"]["resolution"] == "640x360"
