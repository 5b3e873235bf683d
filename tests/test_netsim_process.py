"""The relay process: many descriptors, expiry, allowed sources, the cap, the channel."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from typing import Any

import pytest

from cloudarcade.bench.leak import wait_until
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.netsim import RelayProcess, RelayProcessError, control
from cloudarcade.server.app import SESSIONS

from .conftest import RunningServer
from .test_netsim_relay import HEADER, Endpoint, _profile, _until


def _from_new_ports(dest: tuple[str, int], count: int) -> None:
    """One datagram to ``dest`` from each of ``count`` distinct source ports."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in ports:
                ports.add(port)
                s.sendto(HEADER.pack(len(ports), 0.0), dest)


async def test_more_than_1024_descriptors_then_idle_mappings_expire() -> None:
    server = Endpoint(echo=True)
    client = Endpoint()
    async with RelayProcess() as process:
        start = (await process.info())["open_fds"]
        relay = await process.open(_profile(), server.addr, idle_timeout=2.0, max_mappings=2000)

        async def mapped() -> bool:
            return (await relay.stats()).mappings_opened >= 1100

        _from_new_ports(relay.address, 1100)
        assert await _until(mapped, 10.0)
        info = await process.info()
        assert info["open_fds"] > 1100 > 1024, info
        # A client that comes now gets a descriptor above 1024, and is served.
        for i in range(20):
            client.sock.sendto(HEADER.pack(i, 0.0), relay.address)
        await client.wait_for(20, limit=5.0)
        assert sorted(seq for _, seq, _, _ in client.got) == list(range(20))

        async def expired() -> bool:
            return (await process.info())["open_fds"] <= start + 1  # + the listen socket

        assert await _until(expired, 15.0)
        stats = await relay.stats()
        assert stats.mappings == 0 and stats.mappings_expired == stats.mappings_opened == 1101
        await relay.close()
    server.close()
    client.close()


async def test_strangers_and_a_full_table_are_dropped_and_counted() -> None:
    events: list[dict[str, Any]] = []
    server, client, stray = Endpoint(echo=True), Endpoint(), Endpoint()
    process = RelayProcess(on_event=events.append)
    await process.start()
    try:
        relay = await process.open(_profile(), server.addr, allowed=[client.addr])
        for i in range(10):
            stray.sock.sendto(HEADER.pack(i, 0.0), relay.address)
            client.sock.sendto(HEADER.pack(i, 0.0), relay.address)
        await client.wait_for(10)
        stats = await relay.stats()
        assert len(client.got) == 10 and stray.got == []
        assert stats.uplink.drops == {"source": 10} and stats.uplink.packets_in == 10
        with pytest.raises(RelayProcessError, match=r"no mapping for 127\.0\.0\.1:\d+: refused "
                                                    r"\(source\)"):
            await relay.upstream_address(stray.addr)

        capped = await process.open(_profile(), server.addr, max_mappings=3)
        _from_new_ports(capped.address, 10)

        async def counted() -> bool:
            return sum((await capped.stats()).uplink.drops.values()) >= 7

        assert await _until(counted, 10.0)
        stats = await capped.stats()
        assert stats.mappings == 3 and stats.uplink.drops == {"mappings": 7}
        refused = {(e["relay"], e["reason"]) for e in events if e["event"] == "refused"}
        assert refused == {(relay.id, "source"), (capped.id, "mappings")}

        with pytest.raises(RelayProcessError, match="unknown relay 99; open relays: 1, 2"):
            await process.request("stats", relay=99)
        with pytest.raises(RelayProcessError, match="unknown op 'nope'; known: open, "):
            await process.request("nope")
        with pytest.raises(RelayProcessError, match=r"idle_timeout must be > 0 s, got -1\.0"):
            await process.open(_profile(), server.addr, idle_timeout=-1)
        with pytest.raises(RelayProcessError, match="open failed: TypeError"):
            await process.request("open", profile=control.pack_profile(_profile()),
                                  listen=["127.0.0.1", 0], forward=["127.0.0.1", 9],
                                  idle_timeout=None)
    finally:
        await process.close()
        for e in (server, client, stray):
            e.close()
    # Closing the channel ends the process, and with it every relay.
    assert not process.running
    with pytest.raises(RelayProcessError, match="not running"):
        await relay.stats()


async def test_a_relay_process_that_dies_is_noticed() -> None:
    exited = asyncio.Event()
    process = RelayProcess(on_exit=exited.set)
    await process.start()
    try:
        relay = await process.open(_profile(), ("127.0.0.1", 9))
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await exited.wait()
        with pytest.raises(RelayProcessError, match=r"not running|has exited"):
            await relay.stats()
    finally:
        await process.close()


async def test_serve_closes_the_viewers_of_a_dead_relay_process_and_starts_anew(
    server: RunningServer,
) -> None:
    pids = []
    for _ in range(2):
        client = HeadlessClient(ClientOptions(url=server.url, game="probe", profile="ideal"))
        try:
            await client.connect()
            session = next(iter(server.app[SESSIONS].values()))
            viewer = next(iter(session.viewers.values()))
            assert viewer.relay is not None and viewer.relay.process.pid is not None
            pids.append(viewer.relay.process.pid)
            os.kill(pids[-1], signal.SIGKILL)
            # At once, not after the liveness timeout: the viewer was the
            # session's last, so the session ends with it.
            assert await wait_until(lambda: not server.app[SESSIONS], 5)
        finally:
            await client.close()
    assert pids[0] != pids[1]  # the next viewer got a relay process of its own
