"""Bad ``/offer`` requests get a clear 4xx JSON error and harm nothing; access control.

A real server on 127.0.0.1 (conftest), real HTTP, real aiortc offers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from cloudarcade.client.headless import ClientError, ClientOptions, HeadlessClient
from cloudarcade.ice import create_peer_connection
from cloudarcade.metrics import REGISTRY, start_metrics_server
from cloudarcade.server.app import CONFIG, SESSIONS, ServerConfig
from cloudarcade.server.options import SessionOptions

from .conftest import RunningServer, start_server

SMALL = SessionOptions(game="probe", width=640, height=360, fps=30, bitrate=1_000_000)


async def _offer_sdp(*, video: bool = True, codec: str | None = None, audio: bool = False) -> str:
    """A real aiortc client offer: recvonly video (only ``codec`` if given), maybe audio."""
    pc: RTCPeerConnection = create_peer_connection("127.0.0.1")
    try:
        pc.createDataChannel("input-events")
        if video:
            transceiver = pc.addTransceiver("video", direction="recvonly")
            if codec is not None:
                caps = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == f"video/{codec.lower()}"]
                )
        if audio:
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def _post(url: str, body: Any = None, *, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as http:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if data is not None:
            kwargs["data"] = data
        else:
            kwargs["json"] = body
        async with http.post(url + "/offer", **kwargs) as response:
            assert response.content_type == "application/json", response.content_type
            return response.status, dict(response.headers), await response.json()


def _counted(name: str, reason: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == name:
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("reason") == reason:
                    total += sample.value
    return total


def _rejected(reason: str = "rejected") -> float:
    return _counted("cloudarcade_sessions_ended", reason)


def _refused(reason: str = "bad_request") -> float:
    return _counted("cloudarcade_offers_refused", reason)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "not JSON"),
        (b"{", 400, "not JSON"),
        (b"\xff\xfe\x00garbage", 400, "not JSON"),
        (b"[1, 2]", 400, "expected a JSON object"),
        (b'"offer"', 400, "expected a JSON object"),
        (b"[" * 100_000, 413, "too large"),
        (b'{"type": "answer", "sdp": "v=0"}', 400, "type: expected 'offer'"),
        (b'{"type": "offer"}', 400, "sdp: expected an SDP string"),
        (b'{"type": "offer", "sdp": 5}', 400, "sdp: expected an SDP string"),
        (b'{"type": "offer", "sdp": "hello"}', 400, "sdp: expected an SDP string"),
        (b'{"type": "offer", "sdp": "v=0\\r\\n"}', 400, "no video section"),
        (b'[' * 5000 + b']' * 5000, 400, "not JSON"),  # deep nesting: RecursionError
    ],
)
async def test_malformed_bodies_get_a_json_4xx(
    server: RunningServer, data: bytes, status: int, message: str
) -> None:
    got, _, body = await _post(server.url, data=data)
    assert got == status and message in body["error"], body
    assert len(server.app[SESSIONS]) == 0


async def test_option_errors_name_the_field_and_the_known_values(server: RunningServer) -> None:
    sdp = await _offer_sdp()
    cases = {
        "game": ("tetris", "known games: probe, pong, swarm"),
        "codec": ("av2", "known codecs: "),
        "profile": ("6g", "known profiles: ideal, wired"),
        "resolution": ("10x10", "resolution: expected an even width"),
        "fps": (0, "fps: expected an integer 1..240"),
        "bitrate": ("9" * 400 + "M", "bitrate: expected 100k..200M"),
        "seed": (1e400, "seed: expected an integer"),
        "stack": ("turbo", "known stacks: tuned, stock"),
        "role": ("admin", "role: expected 'player' or 'spectator'"),
    }
    for field, (value, message) in cases.items():
        body: dict[str, Any] = {"type": "offer", "sdp": sdp, field: value}
        raw = json.dumps(body).replace("Infinity", "1e400").encode()
        status, _, answer = await _post(server.url, data=raw)
        assert status == 400 and message in answer["error"], (field, answer)
    assert len(server.app[SESSIONS]) == 0


async def test_offers_the_server_cannot_serve_are_refused_and_counted(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    before, refused_before = _rejected(), _refused()
    no_video = await _offer_sdp(video=False, audio=True)
    vp8_only = await _offer_sdp(codec="VP8")
    caplog.set_level(logging.WARNING, "cloudarcade.server.app")
    for _ in range(3):
        status, _, body = await _post(server.url, {"type": "offer", "sdp": no_video})
        assert status == 400 and "no video section" in body["error"]
    status, _, body = await _post(server.url, {"type": "offer", "sdp": vp8_only})
    assert status == 400 and "no H264 video codec (offered: VP8" in body["error"], body
    # Each was refused before a session existed: counted as refused, not as a session.
    assert _refused() - refused_before == 4
    assert _rejected() - before == 0
    assert len(server.app[SESSIONS]) == 0
    # Logged once per kind of refusal, not once per request.
    lines = [r for r in caplog.records if "no video section" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    # The server still serves a good offer with the same codec, on VP8 too.
    client = HeadlessClient(ClientOptions(url=server.url, game="probe", codec="vp8"))
    await client.connect()
    await client.wait_for_frames(3, timeout=15)
    await client.close()


async def test_server_full_is_503_with_retry_after(server: RunningServer) -> None:
    server.app[CONFIG].max_sessions = 1
    first = HeadlessClient(ClientOptions(url=server.url, game="probe"))
    await first.connect()
    status, headers, body = await _post(server.url, {"type": "offer", "sdp": await _offer_sdp()})
    assert status == 503 and "server full" in body["error"]
    assert headers["Retry-After"] == "5"
    await first.close()


@pytest.fixture
async def token_server() -> AsyncIterator[RunningServer]:
    running = await start_server(ServerConfig(defaults=SMALL, token="s3cret-token"))
    yield running
    await running.runner.cleanup()


async def test_access_token_is_required(token_server: RunningServer) -> None:
    sdp = await _offer_sdp()
    offer = {"type": "offer", "sdp": sdp}
    for headers, body in [
        ({}, offer),
        ({"Authorization": "Bearer wrong"}, offer),
        ({"Authorization": "Basic s3cret-token"}, offer),
        ({}, {**offer, "token": "wrong"}),
        ({}, {**offer, "token": ["s3cret-token"]}),
        ({}, {**offer, "token": "\ud800"}),
    ]:
        status, got_headers, answer = await _post(token_server.url, body, headers=headers)
        assert status == 401 and "access token" in answer["error"], (headers, body.get("token"))
        assert got_headers["WWW-Authenticate"].startswith("Bearer")
    # Not even a parse error leaks before the token check.
    status, _, _ = await _post(token_server.url, data=b"{nope")
    assert status == 401
    assert len(token_server.app[SESSIONS]) == 0

    # The browser puts it in the body; other clients use the header.
    status, _, answer = await _post(token_server.url, {**offer, "token": "s3cret-token"})
    assert status == 200, answer
    share = answer["share"]
    # Joining through a share link needs the access token as well as the share token.
    join = {"type": "offer", "sdp": await _offer_sdp(), "join": share, "role": "spectator"}
    status, _, answer = await _post(token_server.url, join)
    assert status == 401
    status, _, answer = await _post(token_server.url, join,
                                    headers={"Authorization": "Bearer s3cret-token"})
    assert status == 200 and answer["role"] == "spectator", answer
    # The answers were never used: the ICE timeout will reclaim them; close now.
    for session in list(token_server.app[SESSIONS].values()):
        await session.close("closed")


async def test_metrics_apart_from_the_public_port() -> None:
    running = await start_server(ServerConfig(defaults=SMALL, metrics_on_public_port=False))
    metrics_runner = await start_metrics_server("127.0.0.1", 0, REGISTRY)
    try:
        port = metrics_runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            async with http.get(running.url + "/metrics") as response:
                assert response.status == 404
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert "cloudarcade_sessions_started_total" in await response.text()
            async with http.get(f"http://127.0.0.1:{port}/offer") as response:
                assert response.status in (404, 405)
    finally:
        await metrics_runner.cleanup()
        await running.runner.cleanup()


@pytest.mark.parametrize(
    "path",
    [
        "/client/../server/app.py",
        "/client/%2e%2e/server/app.py",
        "/client/..%2fserver%2fapp.py",
        "/client/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/client//etc/passwd",
        "/client/../../../../etc/passwd",
        "/client/",
        "/client/web/../../headless.py",
    ],
)
async def test_static_files_only_from_the_client_folder(server: RunningServer, path: str) -> None:
    async with (aiohttp.ClientSession() as http,
                http.get(server.url + path, allow_redirects=False) as response):
        body = await response.read()
        assert response.status in (403, 404), (path, response.status)
        assert b"import" not in body and b"root:" not in body


async def test_no_cors_wildcard(server: RunningServer) -> None:
    evil = {"Origin": "http://evil.example"}
    async with aiohttp.ClientSession() as http:
        for method, path in [("GET", "/"), ("GET", "/healthz"), ("GET", "/metrics"),
                             ("POST", "/offer"), ("OPTIONS", "/offer")]:
            async with http.request(method, server.url + path, headers={
                **evil, "Access-Control-Request-Method": "POST"}) as response:
                allowed = {k.lower() for k in response.headers}
                assert not any(k.startswith("access-control-") for k in allowed), (path, allowed)


async def test_client_error_reports_the_refusal(server: RunningServer) -> None:
    client = HeadlessClient(ClientOptions(url=server.url, resolution="641x360"))
    with pytest.raises(ClientError, match=r"400.*even width"):
        await client.connect()
    await client.close()


def test_serve_reads_the_token_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cloudarcade.cli import build_parser
    from cloudarcade.commands.serve import build_config

    parser, _ = build_parser()
    monkeypatch.delenv("CLOUDARCADE_TOKEN", raising=False)
    config = build_config(parser.parse_args(["serve"]))
    assert config.token is None and config.host == "127.0.0.1"
    assert config.limits.ice_timeout == 10 and config.limits.idle_timeout == 0
    monkeypatch.setenv("CLOUDARCADE_TOKEN", "from-env")
    assert build_config(parser.parse_args(["serve"])).token == "from-env"
    config = build_config(parser.parse_args(["serve", "--token", "flag", "--idle-timeout", "60"]))
    assert config.token == "flag" and config.limits.idle_timeout == 60
