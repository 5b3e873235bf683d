"""``POST /offer`` as a hostile or clumsy client sends it, at the HTTP level.

Raw sockets on 127.0.0.0/8 against a real server (conftest): bodies in many
TCP writes, oversized chunked bodies, bodies that never finish, offers that
must be refused before anything is built for them, pending work and
connections past their caps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from cloudarcade import encoder as encoder_module
from cloudarcade.bench.attack_client import many_sections
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.metrics import REGISTRY
from cloudarcade.server import session as session_module
from cloudarcade.server import viewer as viewer_module
from cloudarcade.server.app import CONFIG, PENDING, SESSIONS, ServerConfig
from cloudarcade.server.limits import Limits
from cloudarcade.server.listener import ConnectionCounts, GuardedSite
from cloudarcade.server.options import OptionError

from .conftest import RunningServer, settle, start_server
from .test_robust_offer import SMALL, _offer_sdp


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def raw_post(url: str, body: bytes, *, pieces: int = 1, gap: float = 0.0,
                   chunked: bool = False, extra: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """POST ``body`` to ``/offer`` in ``pieces`` TCP writes ``gap`` seconds apart."""
    host, port = _address(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
        head = (b"POST /offer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\n%s"
                b"\r\n" % (host.encode(), length, extra))
        writer.write(head)
        step = -(-len(body) // pieces)
        for i in range(pieces):
            await writer.drain()
            if i:
                await asyncio.sleep(gap)  # the attack itself: the body arrives in pieces
            writer.write(body[i * step:(i + 1) * step])
        await writer.drain()
        status, headers, raw = await _read_response(reader)
        return status, headers, json.loads(raw)
    finally:
        writer.close()


async def _close_sessions(server: RunningServer) -> None:
    for session in list(server.app[SESSIONS].values()):
        await session.close("closed")


@pytest.mark.parametrize(("pieces", "gap"), [(2, 0.001), (3, 0.05), (5, 0.01)])
async def test_an_offer_in_several_tcp_writes_is_answered(
    server: RunningServer, pieces: int, gap: float
) -> None:
    body = json.dumps({"type": "offer", "sdp": await _offer_sdp()}).encode()
    assert len(body) > 1000
    status, _, answer = await raw_post(server.url, body, pieces=pieces, gap=gap)
    assert status == 200, answer
    assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
    await _close_sessions(server)


async def test_a_chunked_body_over_the_limit_is_413(server: RunningServer) -> None:
    host, port = _address(server.url)
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b"[" * 65536
    head = (b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")

    async def send() -> None:
        writer.write(head)
        for _ in range(160):  # 10 MiB, unless the answer comes first
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    sending = asyncio.ensure_future(send())
    try:
        status, headers, raw = await _read_response(reader)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()
    assert status == 413, raw
    assert "too large: at most 65536 bytes" in json.loads(raw)["error"]
    assert headers.get("connection") == "close"


async def test_a_declared_oversized_body_is_413_before_it_is_read(server: RunningServer) -> None:
    status, _, answer = await _declared_too_large(server.url)
    assert status == 413 and "too large" in answer["error"], answer


async def _declared_too_large(url: str) -> tuple[int, dict[str, str], Any]:
    host, port = _address(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n{")
        await writer.drain()
        status, headers, raw = await _read_response(reader)
        return status, headers, json.loads(raw)
    finally:
        writer.close()


async def test_a_body_that_never_finishes_times_out(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(body_timeout=0.5)
    host, port = _address(server.url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n{\"type\"")
        await writer.drain()
        status, headers, raw = await _read_response(reader)
    finally:
        writer.close()
    assert status == 408, raw
    assert "not all received within 0.5 s" in json.loads(raw)["error"]
    assert headers.get("connection") == "close"
    assert not server.app[SESSIONS]


def _metric(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_refused_offers_build_nothing(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            built.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    spy(session_module, "create_game")
    spy(encoder_module, "create_encoder")
    spy(viewer_module, "create_peer_connection")
    sdp = await _offer_sdp()
    audio_only = await _offer_sdp(video=False, audio=True)
    started = _metric("cloudarcade_sessions_started_total")
    # The attacks: audio-only offers asking for 4K (once they built a
    # 4K game and encoder each), and a valid 55 KB offer with 500 m-sections.
    cases = [
        *[({"sdp": audio_only, "resolution": "3840x2160"}, "sdp: offer has no video section")] * 20,
        ({"sdp": many_sections(sdp, 498)}, "sdp: more than 8 media sections"),
        ({"sdp": "v=0\r\nm=video 9 x\r\n"}, "sdp: line 2 is not 'm=<media> <port>"),
        ({"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96\r\n"},
         "sdp: not a valid offer (ValueError: "),
        ({"sdp": sdp, "join": ["a-share-token"]}, "join: expected a session's share token"),
        ({"sdp": sdp, "join": {"x": 1}}, "join: expected"),
    ]
    for fields, message in cases:
        body = json.dumps({"type": "offer", **fields}).encode()
        status, _, answer = await raw_post(server.url, body)
        assert status == 400 and message in answer["error"], (fields.keys(), answer)
    assert built == []
    assert not server.app[SESSIONS]
    assert _metric("cloudarcade_sessions_started_total") == started
    # An acceptable offer gets a peer connection, but no game or encoder until
    # its client connects.
    body = json.dumps({"type": "offer", "sdp": sdp}).encode()
    status, _, answer = await raw_post(server.url, body)
    assert status == 200, answer
    assert built == ["create_peer_connection"]
    session = next(iter(server.app[SESSIONS].values()))
    assert session.connecting and session.pipeline is None
    await _close_sessions(server)
    # A client that connects gets them, built once.
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    await client.close()
    assert sorted(built) == ["create_encoder", "create_game", "create_peer_connection",
                             "create_peer_connection"]


async def test_offers_in_progress_are_capped(server: RunningServer) -> None:
    body = json.dumps({"type": "offer", "sdp": await _offer_sdp()}).encode()
    pending = server.app[PENDING]
    pending.count = server.app[CONFIG].limits.max_pending_offers  # as if that many were running
    try:
        status, headers, answer = await raw_post(server.url, body)
    finally:
        pending.count = 0
    assert status == 503 and "server busy: 4 offers are being answered" in answer["error"]
    assert headers["retry-after"] == "1"
    assert not server.app[SESSIONS]
    status, _, answer = await raw_post(server.url, body)
    assert status == 200, answer
    await _close_sessions(server)


async def test_sessions_still_connecting_are_capped_and_reclaimed(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(max_connecting=1, ice_timeout=1.0)
    body = json.dumps({"type": "offer", "sdp": await _offer_sdp()}).encode()
    status, _, answer = await raw_post(server.url, body)
    assert status == 200, answer
    status, headers, answer = await raw_post(server.url, body)
    assert status == 503 and "1 new sessions are still connecting" in answer["error"], answer
    assert headers["retry-after"] == "2"
    sessions = server.app[SESSIONS]
    assert await settle(lambda: not sessions)  # the ICE timeout reclaims it
    # A client that does connect is not held back by the cap.
    client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    status, _, answer = await raw_post(server.url, body)
    assert status == 200, answer
    await client.close()
    await _close_sessions(server)


async def test_connections_per_address_are_capped(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(max_connections_per_address=8)
    site = next(iter(server.runner.sites))
    assert isinstance(site, GuardedSite)
    host, port = _address(server.url)
    refused_before = _metric("cloudarcade_connections_refused_total", reason="per_address")
    # Idle connections from another loopback address: 8 are held, the rest refused.
    connections = [await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
                   for _ in range(12)]
    reads = [asyncio.ensure_future(reader.read()) for reader, _ in connections]
    try:
        assert await settle(lambda: sum(r.done() for r in reads) >= 4)
        answers = [r.result() for r in reads if r.done()]
        assert len(answers) == 4
        for raw in answers:
            assert raw.startswith(b"HTTP/1.1 503 "), raw
            assert b"too many connections from 127.0.0.2: at most 8 at once" in raw
        assert site.counts.by_address["127.0.0.2"] == 8
        assert (_metric("cloudarcade_connections_refused_total", reason="per_address")
                - refused_before) == 4
        # Other addresses are served meanwhile: health, and a new WebRTC session.
        async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as response:
            assert response.status == 200
        client = HeadlessClient(ClientOptions(url=server.url, game="probe"))
        await client.connect()
        await client.wait_for_frames(3, timeout=15)
        await client.close()
    finally:
        for read in reads:
            read.cancel()
        for _, writer in connections:
            writer.close()
    assert await settle(lambda: "127.0.0.2" not in site.counts.by_address)


async def test_a_connection_without_headers_is_closed(server: RunningServer) -> None:
    server.app[CONFIG].limits = Limits(header_timeout=0.3)
    host, port = _address(server.url)
    closed_before = _metric("cloudarcade_connections_refused_total", reason="header_timeout")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        await writer.drain()
        with contextlib.suppress(ConnectionResetError):  # closed with a reset: also closed
            assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
    assert (_metric("cloudarcade_connections_refused_total", reason="header_timeout")
            - closed_before) == 1
    # A request whose headers arrive in time is answered on the same terms.
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await _read_response(reader)
        assert status == 200
    finally:
        writer.close()


def test_connection_counts() -> None:
    counts = ConnectionCounts()
    limits = Limits(max_connections_per_address=2, max_connections=3)
    assert counts.admit("a", limits) is None
    assert counts.admit("a", limits) is None
    assert counts.admit("a", limits) == "per_address"
    assert counts.admit("b", limits) is None
    assert counts.admit("c", limits) == "total"
    counts.release("a")
    assert counts.admit("c", limits) is None
    for address in ("a", "b", "c"):
        counts.release(address)
    assert counts.total == 0 and counts.by_address == {}


def test_the_guard_works_on_uvloop() -> None:
    """``cloudarcade serve`` runs on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def main() -> None:
        config = ServerConfig(defaults=SMALL, limits=Limits(max_connections_per_address=1))
        running = await start_server(config)
        host, port = _address(running.url)
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(_read_response(reader), 10))[0] == 200
            second, second_writer = await asyncio.open_connection(host, port)
            assert (await asyncio.wait_for(second.read(), 10)).startswith(b"HTTP/1.1 503 ")
            second_writer.close()
            writer.close()
        finally:
            await running.runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def test_serve_raises_the_open_file_limit() -> None:
    code = (
        "import resource\n"
        "from cloudarcade.runtime import raise_fd_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "raised = raise_fd_limit()\n"
        "print(raised == (hard, hard), resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.split() == ["True", "True"], result


def test_serve_flags_set_the_connection_limits() -> None:
    from cloudarcade.cli import build_parser
    from cloudarcade.commands.serve import build_config

    parser, _ = build_parser()
    config = build_config(parser.parse_args(
        ["serve", "--header-timeout", "3", "--max-connections-per-address", "5"]))
    assert config.limits.header_timeout == 3 and config.limits.max_connections_per_address == 5
    with pytest.raises(OptionError, match="max_connections_per_address: expected an integer"):
        build_config(parser.parse_args(["serve", "--max-connections-per-address", "0"]))
