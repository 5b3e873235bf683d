"""``POST /offer`` as a hostile or clumsy client sends it, at the HTTP level.

Raw sockets on 127.0.0.1 against a real server (conftest): bodies in many TCP
writes, oversized chunked bodies, bodies that never finish.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cloudarcade.server.app import CONFIG, SESSIONS
from cloudarcade.server.limits import Limits

from .conftest import RunningServer
from .test_robust_offer import _offer_sdp


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
