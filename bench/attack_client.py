"""A hostile client's tools for ``cloudarcade.bench.attack``: raw HTTP, offers, probes.

Raw HTTP over asyncio streams (so a body can be split into TCP writes as a
network would split it), real aiortc offers and their mangled variants, a
``/healthz`` poller, and readings of another process's CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import numpy as np

from cloudarcade.ice import create_peer_connection

# No request of the attacker waits longer than this (an old server may hang).
TIMEOUT = aiohttp.ClientTimeout(total=15)


def ms(values: list[float]) -> dict[str, float]:
    """p50/p99/max of durations in seconds, as milliseconds."""
    if not values:
        return {}
    array = np.asarray(values) * 1000
    return {"n": len(values), "p50": round(float(np.percentile(array, 50)), 2),
            "p99": round(float(np.percentile(array, 99)), 2), "max": round(float(array.max()), 2)}


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def post_in_pieces(host: str, port: int, body: bytes, pieces: int,
                         gap: float) -> tuple[int, bytes]:
    """POST ``body`` to ``/offer`` in ``pieces`` TCP writes ``gap`` seconds apart."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"POST /offer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body)))
        await writer.drain()
        step = -(-len(body) // pieces)
        for i in range(pieces):
            if i:
                await asyncio.sleep(gap)
            writer.write(body[i * step:(i + 1) * step])
            await writer.drain()
        return await asyncio.wait_for(read_response(reader), 30)
    finally:
        writer.close()


async def client_offer(audio_only: bool = False) -> tuple[Any, str]:
    pc = create_peer_connection("127.0.0.1")
    pc.createDataChannel("input-events")
    pc.addTransceiver("audio" if audio_only else "video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, str(pc.localDescription.sdp)


async def wait_connected(pc: Any, timeout: float) -> bool:
    settled = asyncio.Event()

    def changed() -> None:
        if pc.connectionState in ("connected", "failed", "closed"):
            settled.set()

    pc.on("connectionstatechange", changed)
    changed()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(settled.wait(), timeout)
    return bool(pc.connectionState == "connected")


class HealthPoller:
    """Polls ``/healthz`` back to back on its own connection; records each latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self, http: aiohttp.ClientSession) -> None:
        while True:
            start = time.monotonic()
            try:
                async with http.get(self.url + "/healthz") as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            self.latencies.append(time.monotonic() - start)
            self.failures += not ok
            await asyncio.sleep(0.005)

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            self._task = asyncio.ensure_future(self._run(http))
            try:
                yield self
            finally:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)


def many_sections(sdp: str, count: int) -> str:
    """``sdp`` with ``count`` more small (but valid) audio sections, as in the issue's 55 KB offer.

    ICE credentials and the DTLS fingerprint move to the session level, where
    every section inherits them; each new section carries only its own mid.
    """
    lines = sdp.split("\r\n")
    shared = [x for x in lines if x.startswith(("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:",
                                                 "a=setup:"))]
    first_media = next(i for i, x in enumerate(lines) if x.startswith("m="))
    session_level = list(dict.fromkeys(shared))
    lines[first_media:first_media] = session_level
    extra = "".join(f"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:a{i}\r\n"
                    "a=recvonly\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n" for i in range(count))
    return "\r\n".join(lines).rstrip("\r\n") + "\r\n" + extra
