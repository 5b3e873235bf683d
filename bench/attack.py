"""Attacks on the offer path and the server's limits, with the figures issue 13 asks for.

``python -m cloudarcade.bench.attack`` starts ``cloudarcade serve`` as a
subprocess on 127.0.0.1 and, as a hostile or clumsy client would:

- posts valid offers in 1-5 TCP writes 1-50 ms apart, each from a real aiortc
  peer connection that then connects (status, connected or not);
- sends a 10 MB chunked body (status);
- posts ``--rejects`` audio-only offers asking for 3840x2160 while a second
  task polls ``/healthz`` (400 latency, ``/healthz`` latency, server RSS growth);
- posts offers with 500 m-sections (status, latency);
- opens ``--idle`` idle connections from 127.0.0.2, then checks ``/healthz`` and
  a new WebRTC session from 127.0.0.1, and how long the held ones stay open;
- posts ``join`` as a list and garbage SDP (status, reason);
- leaves offers unconnected (time until their sessions are reclaimed);
- sends SIGTERM with a half-sent request open (time to exit).

It prints every figure with the conditions. Wrap timing runs in
``flock /tmp/cloudarcade-bench.lock``. ``--baseline DIR`` runs the same
attacks against the server code in DIR (a checkout of another commit) for a
side-by-side comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from cloudarcade.bench.attack_client import (
    TIMEOUT,
    HealthPoller,
    client_offer,
    many_sections,
    ms,
    post_in_pieces,
    read_response,
    wait_connected,
)
from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.bench.soak import cpu_seconds, rss_kib
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.runtime import raise_fd_limit

logger = logging.getLogger(__name__)

Figures = dict[str, Any]


async def multi_write(host: str, port: int) -> Figures:
    from aiortc import RTCSessionDescription

    rows = []
    for pieces, gap in [(1, 0.0), (2, 0.001), (2, 0.05), (3, 0.01), (5, 0.001), (5, 0.05)]:
        pc, sdp = await client_offer()
        try:
            body = json.dumps({"type": "offer", "sdp": sdp}).encode()
            status, raw = await post_in_pieces(host, port, body, pieces, gap)
            connected = False
            if status == 200:
                answer = json.loads(raw)
                await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
                connected = await wait_connected(pc, 10)
            rows.append({"writes": pieces, "gap_ms": gap * 1000, "bytes": len(body),
                         "status": status, "connected": connected,
                         "error": None if status == 200 else json.loads(raw).get("error")})
        finally:
            await pc.close()
    return {"offers": rows}


async def chunked_10mb(host: str, port: int) -> Figures:
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b"[" * 65536

    async def send() -> None:
        writer.write(b"POST /offer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(160):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    sending = asyncio.ensure_future(send())
    start = time.monotonic()
    try:
        status, raw = await asyncio.wait_for(read_response(reader), 30)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()
    return {"status": status, "seconds": round(time.monotonic() - start, 3),
            "error": json.loads(raw).get("error") if raw.startswith(b"{") else raw[:80].decode()}


async def _no_sessions(http: aiohttp.ClientSession, url: str, timeout: float = 30) -> int:
    """Wait until the server reports no session (earlier attacks' are reclaimed)."""
    end = time.monotonic() + timeout
    while True:
        async with http.get(url + "/healthz") as response:
            sessions = int((await response.json())["sessions"])
        if sessions == 0 or time.monotonic() > end:
            return sessions
        await asyncio.sleep(0.1)


async def rejected_offers(url: str, pid: int, count: int, body: dict[str, Any]) -> Figures:
    raw = json.dumps(body).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: set[str] = set()
    poller = HealthPoller(url)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        await _no_sessions(http, url)
        for _ in range(3):  # warm-up, not counted: first-use imports and caches
            async with http.post(url + "/offer", data=raw) as response:
                await response.read()
    rss_before, cpu_before = rss_kib(pid) or 0, cpu_seconds(pid)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, poller.running():
        await asyncio.sleep(0.2)  # a baseline of /healthz before the attack
        for _ in range(count):
            start = time.monotonic()
            async with http.post(url + "/offer", data=raw) as response:
                answer = await response.json()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.monotonic() - start)
            if "error" in answer:
                errors.add(answer["error"][:100])
    rss_after, cpu_after = rss_kib(pid) or 0, cpu_seconds(pid)
    return {"statuses": statuses, "errors": sorted(errors), "latency_ms": ms(latencies),
            "server_cpu_ms_per_offer": round((cpu_after - cpu_before) * 1000 / count, 2),
            "rss_mb": [round(rss_before / 1024, 1), round(rss_after / 1024, 1)],
            "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
            "healthz_ms": ms(poller.latencies), "healthz_failures": poller.failures}


async def idle_connections(host: str, port: int, url: str, pid: int, count: int) -> Figures:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        await _no_sessions(http, url)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed_to_open = 0
    start = time.monotonic()
    for _ in range(count):
        try:
            opened.append(await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0)), 5))
        except (OSError, TimeoutError):
            failed_to_open += 1
    reads = [asyncio.ensure_future(reader.read()) for reader, _ in opened]
    closed_at: dict[int, float] = {}

    def on_closed(index: int) -> Any:
        return lambda _: closed_at.setdefault(index, time.monotonic())

    for i, read in enumerate(reads):
        read.add_done_callback(on_closed(i))
    # Those the server refuses are answered and closed at once; let them settle.
    settle_end = time.monotonic() + 5
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < settle_end:
        done = len(closed_at)
        if done != last:
            last, stable_since = done, time.monotonic()
        elif time.monotonic() - stable_since > 0.5:
            break
        await asyncio.sleep(0.05)
    refused = sum(1 for r in reads if r.done() and not r.cancelled() and r.exception() is None
                  and r.result().startswith(b"HTTP/1.1 503"))
    held = len(opened) - len(closed_at)
    server_fds = len(os.listdir(f"/proc/{pid}/fd"))
    health_start = time.monotonic()
    try:
        async with (aiohttp.ClientSession(timeout=TIMEOUT) as http,
                    http.get(url + "/healthz") as response):
            health: Figures = {"status": response.status,
                               "ms": round((time.monotonic() - health_start) * 1000, 2)}
    except (aiohttp.ClientError, TimeoutError) as exc:
        health = {"status": None, "error": repr(exc)[:120]}
    client = HeadlessClient(ClientOptions(url=url, game="probe", resolution="640x360", fps=30))
    webrtc_start = time.monotonic()
    try:
        await client.connect()
        await client.wait_for_frames(10, timeout=20)
        webrtc: Figures = {"ok": True, "seconds_to_10_frames":
                           round(time.monotonic() - webrtc_start, 2)}
    except Exception as exc:  # the figure is whether it worked
        webrtc = {"ok": False, "error": str(exc)[:200]}
    finally:
        await client.close()
    # The held ones: closed by the header timeout.
    await asyncio.wait(reads, timeout=30)  # (asyncio.wait cancels nothing on timeout)
    held_open = len(opened) - len(closed_at)  # not closed by the server within 30 s
    held_for = sorted(closed_at[i] - start for i in closed_at)
    for read in reads:
        read.cancel()
    for _, writer in opened:
        writer.close()
    return {"opened": len(opened), "failed_to_open": failed_to_open, "refused_503": refused,
            "held": held, "server_fds_while_held": server_fds, "healthz": health,
            "webrtc_from_127.0.0.1": webrtc,
            "held_closed_by_server_after_s": round(held_for[-1], 1) if held_for else None,
            "still_open_after_30_s": held_open}


async def small_errors(url: str, sdp: str) -> Figures:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        await _no_sessions(http, url)
    cases = {"join_as_list": {"type": "offer", "sdp": sdp, "join": ["token"]},
             "garbage_sdp": {"type": "offer", "sdp": "v=0\r\nm=video 9 x\r\n"},
             "garbage_sdp_2": {"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                                                       "a=rtpmap:96\r\n"}}
    out: Figures = {}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        for name, body in cases.items():
            async with http.post(url + "/offer", json=body) as response:
                out[name] = {"status": response.status,
                             "error": (await response.json()).get("error")}
    return out


async def unconnected_reclaimed(url: str, offers: int) -> Figures:
    pcs = []
    statuses = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        await _no_sessions(http, url)
        for _ in range(offers):
            pc, sdp = await client_offer()
            pcs.append(pc)
            async with http.post(url + "/offer", json={"type": "offer", "sdp": sdp}) as response:
                statuses.append(response.status)
        start = time.monotonic()
        sessions = -1
        while time.monotonic() - start < 60:
            async with http.get(url + "/healthz") as response:
                sessions = (await response.json())["sessions"]
            if sessions == 0:
                break
            await asyncio.sleep(0.1)
    for pc in pcs:
        await pc.close()
    return {"statuses": statuses, "reclaimed_after_s": round(time.monotonic() - start, 1),
            "sessions_left": sessions}


async def sigterm_with_half_sent_request(server: ServerProcess, host: str, port: int) -> Figures:
    _, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n{\"type\"")
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is now waiting for the rest of the body
    start = time.monotonic()
    await server.stop()
    seconds = time.monotonic() - start
    writer.close()
    # ServerProcess.stop sends SIGKILL after 10 s.
    return {"exit_s": round(seconds, 2), "killed_after_10_s": seconds >= 10}


async def attack_one(args: argparse.Namespace, code: Path | None, log_dir: Path,
                     rejects: int) -> Figures:
    saved_path, saved_cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if code is not None:
        # ``python -m`` puts the working directory first on sys.path, then
        # PYTHONPATH: the server subprocess imports cloudarcade from ``code``.
        os.environ["PYTHONPATH"] = str(code)
        os.chdir(code)
    server = ServerProcess(args=["--game", "probe", "--no-uvloop"] if args.no_uvloop
                           else ["--game", "probe"], log_path=log_dir / "server.log")
    try:
        url = await server.start()
    finally:
        os.chdir(saved_cwd)
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
    assert server.pid is not None
    host, port = url.removeprefix("http://").rsplit(":", 1)
    figures: Figures = {"code": str(code) if code else "this checkout",
                        "load_average": [round(x, 2) for x in os.getloadavg()]}
    logger.info("attacking %s (server code: %s)", url, figures["code"])
    try:
        figures["multi_write"] = await multi_write(host, int(port))
        figures["chunked_10mb"] = await chunked_10mb(host, int(port))
        _, audio_only = await client_offer(audio_only=True)
        figures["audio_only_4k"] = await rejected_offers(
            url, server.pid, rejects,
            {"type": "offer", "sdp": audio_only, "resolution": "3840x2160"})
        pc, sdp = await client_offer()
        await pc.close()
        many = many_sections(sdp, 498)  # 500 in all, 55 KB
        figures["m_sections_500"] = await rejected_offers(
            url, server.pid, 10, {"type": "offer", "sdp": many})
        figures["small_errors"] = await small_errors(url, sdp)
        figures["idle_connections"] = await idle_connections(host, int(port), url, server.pid,
                                                             args.idle)
        figures["unconnected"] = await unconnected_reclaimed(url, 4)
        figures["sigterm"] = await sigterm_with_half_sent_request(server, host, int(port))
    finally:
        await server.stop()
    return figures


async def run(args: argparse.Namespace) -> list[Figures]:
    raise_fd_limit()  # the idle-connection attack holds thousands of sockets
    results = []
    with tempfile.TemporaryDirectory(prefix="cloudarcade-attack-") as tmp:
        for code in ([args.baseline] if args.baseline else []) + [None]:
            log_dir = Path(tmp) / ("baseline" if code else "current")
            log_dir.mkdir()
            rejects = args.baseline_rejects if code else args.rejects
            results.append(await attack_one(args, code, log_dir, rejects))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.attack",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rejects", type=int, default=100,
                        help="audio-only 4K offers to send (default 100)")
    parser.add_argument("--idle", type=int, default=2000,
                        help="idle connections to open from 127.0.0.2 (default 2000)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="also attack the server code in DIR (another checkout), first")
    parser.add_argument("--baseline-rejects", type=int, default=40, metavar="N",
                        help="audio-only 4K offers against the baseline (default 40: each "
                             "cost an old server ~0.4 s of CPU and ~15 MB)")
    parser.add_argument("--no-uvloop", action="store_true", help="serve with asyncio's loop")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}; "
          f"python {sys.version.split()[0]}")
    for figures in results:
        print(f"\n== {figures.pop('code')}")
        for name, value in figures.items():
            print(f"{name}: {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
