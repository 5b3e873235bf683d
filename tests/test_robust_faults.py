"""Faults: a netsim blackout, heavy loss, vanished and killed clients, signals to the server.

Real server, real headless client, real netsim relay on 127.0.0.1. Bounds are
generous (shared 2-core machine); the benchmarks print the figures.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import threading

import numpy as np
import pytest

from cloudarcade.bench.leak import Resources, cycles, die_abruptly, wait_until
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.netsim.outage import Blackout
from cloudarcade.netsim.profile import LinkSpec, Profile
from cloudarcade.server.app import CONFIG, SESSIONS
from cloudarcade.server.limits import Limits

from .conftest import RunningServer

pytestmark = pytest.mark.slow

SMALL = ["--game", "probe", "--resolution", "640x360", "--fps", "30", "--bitrate", "1M"]


class FrameClock:
    """Wall times at which the client decoded frames."""

    def __init__(self, client: HeadlessClient) -> None:
        self.times: list[float] = []
        original = client._handle_frame

        def handle(frame, code, stamps):  # type: ignore[no-untyped-def]
            self.times.append(stamps["decode_end"])
            original(frame, code, stamps)

        client._handle_frame = handle  # type: ignore[method-assign]

    def largest_gap(self) -> tuple[float, float]:
        """(gap seconds, time the gap ended)."""
        t = np.asarray(self.times)
        gaps = np.diff(t)
        i = int(np.argmax(gaps))
        return float(gaps[i]), float(t[i + 1])


@pytest.mark.parametrize("cc", ["none", "gcc"])
async def test_a_3_s_blackout_stops_the_stream_which_resumes_in_the_same_session(
    server: RunningServer, cc: str
) -> None:
    blackout = (Blackout(start=2.0, duration=3.0),)
    server.app[CONFIG].profiles["blackout"] = Profile(
        name="blackout", description="3 s outage both ways 2 s in", source="test",
        uplink=LinkSpec(delay_ms=5.0, outages=blackout),
        downlink=LinkSpec(delay_ms=5.0, outages=blackout),
    )
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile="blackout",
                                          cc=cc))
    clock = FrameClock(client)
    await client.connect()
    session = next(iter(server.app[SESSIONS].values()))
    await client.wait_for_frames(5, timeout=15)

    def resumed_for(frames: int) -> bool:
        """The outage's gap is behind us and ``frames`` frames came after it."""
        if len(clock.times) < 2:
            return False
        gap, resumed = clock.largest_gap()
        return gap > 2.5 and sum(1 for t in clock.times if t >= resumed) >= frames

    # Frames stop when the downlink goes dark and come back with a keyframe once
    # the client's PLI gets through. How soon is the benchmark's figure (each
    # freeze's duration in summary.json: `cloudarcade bench --profiles
    # 5g-handover`, a profile with outages); here: the gap is the outage (at
    # least 2.5 of its 3 s) and play resumes.
    assert await wait_until(lambda: resumed_for(20), 25), (
        f"largest gap {clock.largest_gap()[0]:.2f} s, {len(clock.times)} frames")
    assert client._receiver is not None
    stats = client._receiver.stats
    if cc == "none":
        # A fixed-rate sender keeps sending into the outage: more is lost than
        # the sender's retransmission buffer holds, and only a keyframe helps.
        assert stats["plis_sent"] >= 1, stats
    else:
        # gcc hears no feedback and stops feeding the dark link (frames skipped
        # at the source): what little was lost comes back by NACK, or a PLI.
        assert stats["plis_sent"] >= 1 or (stats["nacks_sent"] >= 1
                                           and stats["frames_skipped"] == 0), stats
    assert server.app[SESSIONS] == {session.id: session} and session.viewers
    relay = next(iter(session.viewers.values())).relay
    assert relay is not None
    relay_stats = await relay.stats()
    assert relay_stats.downlink.drops.get("outage", 0) > 0
    await client.close()
    assert await wait_until(lambda: not server.app[SESSIONS], 5)


async def test_ten_percent_loss_play_continues_without_backlog(server: RunningServer) -> None:
    lossy = LinkSpec(delay_ms=10.0, loss={"model": "bernoulli", "p": 0.1})
    server.app[CONFIG].profiles["loss10"] = Profile(
        name="loss10", description="10% loss both ways", source="test", seed=7,
        uplink=lossy, downlink=lossy,
    )
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile="loss10",
                                          input_interval=0.2))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    start = client.summary.frames_decoded
    await client.run_inputs(6.0)
    probes = client.summary.probes

    def answered() -> int:
        return sum(1 for p in probes if p.input_to_photon is not None)

    # Most inputs (~90% get through the uplink) come back on screen. Generous: with
    # gcc (the default) 10% random loss pulls the target to ~0.2 Mbit/s, and a lost
    # keyframe at that rate can freeze the picture for seconds (one run in three
    # here answered nothing within 5 s, all 32 within 8 s; issue 10's closing note).
    assert await wait_until(lambda: answered() >= len(probes) // 2, 15), (answered(), len(probes))
    decoded = client.summary.frames_decoded - start
    assert decoded >= 30, decoded  # of ~180 sent: play goes on (generous for a loaded machine)
    latencies = list(client.summary.frame_latencies)
    assert len(latencies) >= 30
    third = len(latencies) // 3
    early, late = np.median(latencies[:third]), np.median(latencies[-third:])
    # No backlog: a growing queue would add seconds over the run. The latency
    # under loss itself is a benchmark figure (cloudarcade bench --profiles lte).
    assert late < early + 1.0, (early, late)
    assert len(server.app[SESSIONS]) == 1
    await client.close()


def _new_threads(before: set[int | None]) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.ident not in before and not t.name.startswith("asyncio_")]


async def test_connect_disconnect_cycles_leak_nothing(server: RunningServer) -> None:
    """Ten cycles, every other one a client that vanishes: resources come back."""
    server.app[CONFIG].limits = Limits(liveness_timeout=1.5)
    sessions = server.app[SESSIONS]
    await cycles(server.url, sessions, 2, abrupt_every=2)  # warm up
    assert await wait_until(lambda: not sessions, 10)
    before = Resources.now()
    threads_before = {t.ident for t in threading.enumerate()}
    abrupt = await cycles(server.url, sessions, 10, abrupt_every=2)
    assert abrupt == 5
    assert await wait_until(lambda: not sessions, 10)
    assert await wait_until(lambda: not _new_threads(threads_before), 5), \
        _new_threads(threads_before)
    # Closing sockets and tasks finish on the loop: wait for them, bounded.
    assert await wait_until(lambda: Resources.now().fds <= before.fds + 2, 5), \
        (before, Resources.now())
    assert await wait_until(lambda: Resources.now().tasks <= before.tasks + 2, 5), \
        (before, Resources.now())
    after = Resources.now()
    assert after.threads <= before.threads, (before, after)
    # Memory: no more than noise (allocator arenas, codec caches); a leak of a
    # session's frames (~10 MB/cycle) would fail. `python -m cloudarcade.bench.leak`
    # prints the figures over many cycles.
    assert after.rss_kib - before.rss_kib < 64 * 1024, (before, after)


async def _server_process(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudarcade.cli", "-v", "serve", "--port", "0", "--no-uvloop",
        *SMALL, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "server exited before it was ready"
        match = re.search(r"cloudarcade serving \S+ on (http://\S+)", line)
        if match:
            return process, match[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_the_server_gracefully(sig: signal.Signals) -> None:
    process, url = await _server_process()
    client = HeadlessClient(ClientOptions(url=url, game="probe"))
    try:
        await client.connect()
        await client.wait_for_frames(3, timeout=15)
        process.send_signal(sig)
        assert process.stderr is not None
        log = (await asyncio.wait_for(process.stderr.read(), 15)).decode()
        code = await asyncio.wait_for(process.wait(), 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await client.close()
    assert code == 0, log[-2000:]
    assert re.search(r"GameSession\(\d+, probe, 640x360\): closing \(shutdown\)", log), log[-2000:]
    assert "Traceback" not in log, log[-2000:]


async def test_a_killed_client_process_is_reclaimed(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(liveness_timeout=2.0)
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudarcade.cli", "play", "--headless", "--url", server.url,
        "--duration", "60", *SMALL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, env=env,
    )
    sessions = server.app[SESSIONS]
    try:
        streaming = await wait_until(
            lambda: any(s.pipeline is not None and s.pipeline.stats["encoded"] > 10
                        for s in sessions.values()), 30)
        assert streaming, "the client never connected"
        session = next(iter(sessions.values()))
        process.kill()
        await process.wait()
        # Reclaimed by the liveness timeout (2 s); the bound is generous.
        assert await wait_until(lambda: not sessions, 15), "session not reclaimed"
        assert session.metrics.closed
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_vanished_client_is_reclaimed_with_timeout(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(liveness_timeout=1.5)
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    sessions = server.app[SESSIONS]
    session = next(iter(sessions.values()))
    ended: list[str] = []
    original = session._on_closed
    assert original is not None

    def record(s, reason):  # type: ignore[no-untyped-def]
        ended.append(reason)
        original(s, reason)

    session._on_closed = record
    die_abruptly(client.pc)
    assert await wait_until(lambda: not sessions, 8)
    assert ended == ["timeout"]
    await client.close()
