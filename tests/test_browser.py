"""The browser client in real headless Chromium against a real server on 127.0.0.1.

Chromium is the Debian package, driven by Playwright with ``executable_path``;
no browser is downloaded. Screenshots of every state go to
``artifacts/screenshots/`` (not committed) for a person to look at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from cloudarcade import protocol
from cloudarcade.bench.chromium_client import CHROMIUM, CHROMIUM_FLAGS
from cloudarcade.metrics import REGISTRY
from cloudarcade.server.app import SESSIONS, ServerConfig
from cloudarcade.server.options import SessionOptions

from .conftest import RunningServer, start_server

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
# Small video: two shared cores run the server, its encoder and the browser.
SMALL = {"resolution": "640x360", "fps": "30", "bitrate": "1M", "codec": "h264"}


def _config(max_sessions: int = 8) -> ServerConfig:
    return ServerConfig(
        defaults=SessionOptions(game="pong", width=640, height=360, fps=30, bitrate=1_000_000),
        max_sessions=max_sessions,
    )


@pytest.fixture
async def web_server() -> AsyncIterator[RunningServer]:
    running = await start_server(_config())
    yield running
    await running.runner.cleanup()


def _chromium() -> str:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM}: install the Debian package 'chromium'"
    return CHROMIUM


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _until(predicate: Callable[[], Any], within: float = 10.0) -> bool:
    """Poll a server-side condition (the page's own conditions use wait_for_function)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def _counted(name: str) -> float:
    """The in-process server's counter ``cloudarcade_<name>_total``, summed over labels."""
    return sum(sample.value for family in REGISTRY.collect() for sample in family.samples
               if sample.name == f"cloudarcade_{name}_total")


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def _open(browser: Browser, url: str, width: int = 1024, height: int = 640) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": height})
    # Into the test's captured log, which pytest shows when a test fails.
    page.on("console", lambda msg: logger.info("%s console %s: %s", url, msg.type, msg.text))
    page.on("pageerror", lambda exc: logger.warning("%s pageerror: %s", url, exc))
    await page.goto(url)
    await page.wait_for_function("window.cloudarcade !== undefined")
    return page


async def _connect(page: Page, game: str) -> None:
    await page.select_option("#game", game)
    for name, value in SMALL.items():
        await page.select_option(f"#{name}", value)
    await page.click("#connect")


async def _state(page: Page, state: str, within: float = 15.0) -> None:
    await page.wait_for_function(
        f"document.body.dataset.state === {state!r}", timeout=within * 1000
    )


# The page's framesDecoded, from the connection's own getStats().
FRAMES_DECODED_JS = """async () => {
    const pc = window.cloudarcade.connection?.pc;
    if (!pc) return 0;
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
    });
    return frames;
}"""


# A standard-mapping pad with these axes, served by navigator.getGamepads().
SYNTHETIC_PAD_JS = """(axes) => {
    const buttons = Array.from({length: 17}, () => ({value: 0, pressed: false, touched: false}));
    window.syntheticPads = [{index: 0, id: "synthetic", connected: true, mapping: "standard",
                             timestamp: performance.now(), axes, buttons}];
    navigator.getGamepads = () => window.syntheticPads;
}"""


async def _frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED_JS))


async def _frames_beyond(page: Page, count: int, within: float = 15.0) -> None:
    """Wait until the page has decoded more than ``count`` frames.

    Polled from here: wait_for_function does not await an async predicate, and
    the Promise it returns is truthy at once.
    """
    end = time.monotonic() + within
    while (frames := await _frames_decoded(page)) <= count:
        assert time.monotonic() < end, f"{frames} frames decoded, waited for more than {count}"
        await asyncio.sleep(0.1)


async def _client_decode_reports(url: str) -> float:
    """How many decode-time figures clients have reported, summed over label sets."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("cloudarcade_client_decode_seconds_count")
    )


async def test_page_and_modules_are_served_without_traversal(web_server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(web_server.url + "/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "/client/js/app.js" in await response.text()
            assert "Access-Control-Allow-Origin" not in response.headers
            assert response.headers["Cache-Control"] == "no-cache"
        async with http.get(web_server.url + "/client/js/app.js") as response:
            assert response.status == 200
            # Browsers run ES modules only with a JavaScript type.
            assert response.content_type in ("text/javascript", "application/javascript")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-cache"
        async with http.get(web_server.url + "/client/style.css") as response:
            assert response.status == 200 and response.content_type == "text/css"
        for path in (
            "/client/../../etc/passwd",
            "/client/%2e%2e/%2e%2e/etc/passwd",
            "/client/..%2f..%2fetc%2fpasswd",
            "/client/js/../../../pyproject.toml",
        ):
            async with http.get(web_server.url + path) as response:
                assert response.status in (403, 404), path
                assert "root:" not in await response.text()
        async with http.get(web_server.url + "/client/") as response:
            assert response.status in (403, 404)  # no directory listing


async def test_play_pong_stats_and_latency(web_server: RunningServer, browser: Browser) -> None:
    reported_before = await _client_decode_reports(web_server.url)
    page = await _open(browser, web_server.url)
    await _shot(page, "01-idle")
    await _connect(page, "pong")
    await _shot(page, "02-connecting")
    await _state(page, "playing")

    # Frames decode: framesDecoded grows.
    await _frames_beyond(page, await _frames_decoded(page) + 10)
    await _shot(page, "03-playing")

    # A held key moves player 0's paddle on the server.
    sessions = list(web_server.app[SESSIONS].values())
    assert len(sessions) == 1
    game = sessions[0].game
    start = game.paddle_y[0]
    received, discarded = _counted("inputs_received"), _counted("inputs_discarded")
    await page.keyboard.down("ArrowUp")
    try:
        assert await _until(lambda: game.paddle_y[0] < start - 10, within=5), (
            start,
            game.paddle_y[0],
        )
    finally:
        await page.keyboard.up("ArrowUp")
    # Each key event went reliably and as copies (docs/protocol.md); the game got it once.
    copies = len(protocol.KEY_COPY_DELAYS)
    assert await _until(lambda: _counted("inputs_discarded") >= discarded + 2 * copies, 5)
    assert _counted("inputs_received") == received + 2

    # A gamepad, through the page's Gamepad API (a synthetic pad: headless
    # Chromium has no device): stick up moves the paddle up; unplugged, it is
    # released.
    controls = game.controls[0]
    await page.evaluate(SYNTHETIC_PAD_JS, [0.0, -1.0, 0.0, 0.0])
    start = game.paddle_y[0]
    assert await _until(lambda: controls.pad_axes[1:2] == (-1.0,), within=5), controls.pad_axes
    assert await _until(lambda: game.paddle_y[0] < start - 10, within=5), game.paddle_y[0]
    await page.evaluate("() => { window.syntheticPads = []; }")
    assert await _until(lambda: not any(controls.pad_axes), within=5), controls.pad_axes

    # The mouse: a click on the video locks the pointer; movement and buttons
    # then reach the game, which follows the pointer.
    box = await page.locator("#video").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.wait_for_function("document.pointerLockElement?.id === 'video'", timeout=5000)
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 60)
    assert await _until(lambda: controls.pointer is not None and controls.pointer[1] > 0.5,
                        within=5), controls.pointer
    await page.mouse.down()
    assert await _until(lambda: controls.pointer_buttons == 1, within=5)
    await page.mouse.up()
    assert await _until(lambda: controls.pointer_buttons == 0, within=5)
    await page.evaluate("() => document.exitPointerLock()")

    # Stats overlay from getStats(); reports reach the server every 2 s.
    await page.keyboard.press("F2")
    await page.wait_for_function(
        "document.querySelector('#stats-rows')?.textContent.includes('H264')", timeout=5000
    )
    await page.wait_for_function("window.cloudarcade.monitor.reports >= 1", timeout=6000)
    for _ in range(50):  # the report is in flight when the page counts it sent
        if await _client_decode_reports(web_server.url) > reported_before:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the page's stats reports never reached the server's metrics")

    # Measure latency: 20 presses on the session being played, p50/p95 in the page.
    await page.click("#measure")
    await page.wait_for_function(
        "document.body.dataset.latency === 'done' || document.body.dataset.latency === 'failed'",
        timeout=30000,
    )
    result = await page.evaluate("window.cloudarcade.latency")
    text = await page.text_content("#latency-result")
    assert result is not None, text
    assert len(result["samples"]) >= 15, result
    # Measured (positive, ordered); how fast is a benchmark's figure.
    assert 0 < result["p50"] <= result["p95"], result
    await _shot(page, "04-stats-latency")

    # Narrow screen: controls wrap, touch buttons appear over the video.
    await page.set_viewport_size({"width": 390, "height": 760})
    await page.keyboard.press("F2")
    assert await page.is_visible("#touch .action")
    await _shot(page, "05-narrow")
    # A finger on the Up button holds ArrowUp in the game until it lifts
    # (real touch events through the DevTools protocol).
    touch = await page.context.new_cdp_session(page)
    await touch.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    up = await page.locator("#touch .up").bounding_box()
    assert up is not None
    point = {"x": up["x"] + up["width"] / 2, "y": up["y"] + up["height"] / 2}
    await touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
    assert await _until(lambda: "ArrowUp" in controls.keys, within=5), controls.keys
    await touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert await _until(lambda: "ArrowUp" not in controls.keys, within=5), controls.keys


async def test_share_link_spectator_and_server_full(browser: Browser) -> None:
    server = await start_server(_config(max_sessions=1))
    try:
        host = await _open(browser, server.url)
        await _connect(host, "pong")
        await _state(host, "playing")
        info = await host.evaluate("window.cloudarcade.info")
        assert info.get("share"), info  # every session has a share token
        spectator_url = await host.input_value("#share-spectator")
        assert f"join={info['share']}" in spectator_url and "role=spectator" in spectator_url
        await _shot(host, "06-host-sharing")

        # A second session does not fit: the page says why.
        other = await _open(browser, server.url)
        await _connect(other, "probe")
        await _state(other, "failed")
        assert "Server full" in (await other.text_content("#notice-title") or "")
        await _shot(other, "07-failed-server-full")
        await other.close()

        # The share link joins the same session as a spectator, without taking a slot.
        watcher = await _open(browser, spectator_url)
        await _state(watcher, "playing")
        assert await watcher.evaluate("window.cloudarcade.info.role") == "spectator"
        assert "spectating" in (await watcher.text_content("#status") or "")
        await _frames_beyond(watcher, 5)
        assert len(server.app[SESSIONS]) == 1
        await _shot(watcher, "08-spectator")

        # The player link makes the joiner pong's player 2: their keys move the right paddle.
        player_url = await host.input_value("#share-player")
        second = await _open(browser, player_url)
        await _state(second, "playing")
        assert await second.evaluate("window.cloudarcade.info.player") == 1
        game = next(iter(server.app[SESSIONS].values())).game
        await second.keyboard.down("ArrowDown")
        start = game.paddle_y[1]
        try:
            # Held by player 1 (index 1), not by the host: and the AI no longer steers it.
            assert await _until(
                lambda: "ArrowDown" in game.controls[1].keys and game.paddle_y[1] > start + 10,
                within=5,
            )
            assert "ArrowDown" not in game.controls[0].keys
        finally:
            await second.keyboard.up("ArrowDown")
        await _shot(second, "09-player-2")
    finally:
        await server.runner.cleanup()


async def test_server_stop_shows_reconnecting_then_recovers(browser: Browser) -> None:
    server = await start_server(_config())
    port = int(server.url.rsplit(":", 1)[1])
    page = await _open(browser, server.url)
    await _connect(page, "probe")
    await _state(page, "playing")
    idle = await _open(browser, server.url)

    await server.runner.cleanup()
    # A first Connect to a stopped server fails at once, and says why.
    await idle.click("#connect")
    await _state(idle, "failed")
    assert "Server unreachable" in (await idle.text_content("#notice-title") or "")
    await _shot(idle, "10-failed-unreachable")
    await idle.close()

    await _state(page, "reconnecting", within=10)
    await _shot(page, "11-reconnecting")
    # While it is down, the retries fail as unreachable and the page keeps trying.
    await page.wait_for_function(
        "window.cloudarcade.lastError?.kind === 'unreachable'", timeout=10000
    )

    restarted = await start_server(_config(), port=port)
    try:
        await _state(page, "playing", within=20)
        await _shot(page, "12-reconnected")
        assert len(restarted.app[SESSIONS]) == 1
    finally:
        await restarted.runner.cleanup()


async def test_page_modules_agree_with_the_server(
    web_server: RunningServer, browser: Browser
) -> None:
    """The page's copies of server rules: the frame code's reader, stats messages."""
    import numpy as np
    import pygame

    from cloudarcade import framecode

    page = await _open(browser, web_server.url)
    # Codes drawn by the server's writer, read by the page's reader (framecode.js),
    # at widths of one and of two rows of blocks; one block blurred to mid-grey
    # must still read (erasure decoding), a band of noise must not.
    cases = []
    for width, frame_id, seq, grey in ((640, 123456, 789, False), (1280, 2**32 - 1, 5, True)):
        surface = pygame.Surface((width, framecode.band_height(width)))
        framecode.write(surface, frame_id, seq)
        luma = pygame.surfarray.array3d(surface)[:, :, 0].T.copy()  # rows x width
        if grey:
            luma[:16, 16:32] = 128
        cases.append((width, [int(v) for v in luma.reshape(-1)], [frame_id, seq]))
    noise = np.random.default_rng(1).integers(0, 256, (16, 1280)).reshape(-1)
    cases.append((1280, [int(v) for v in noise], None))
    got = await page.evaluate(
        """async (cases) => {
            const m = await import("/client/js/framecode.js");
            return cases.map(([width, luma]) => {
                const code = m.readLuma(Uint8Array.from(luma), width, width);
                return code && [code.frameId, code.inputSeq];
            });
        }""",
        cases,
    )
    assert got == [expected for _, _, expected in cases]

    message = await page.evaluate(
        """async () => {
            const m = await import("/client/js/stats.js");
            const figures = {fpsDecoded: 29.97, decodeMs: 0.8, jitterBufferMs: 6.6, freezes: 0,
                             rttMs: 1.2, packetsLost: 3, framesDecoded: 1234};
            return JSON.stringify(m.statsMessage(figures, performance.now() / 1000, 42.5));
        }"""
    )
    report = protocol.parse(message)
    assert isinstance(report, protocol.StatsReport)
    assert report.frames_decoded == 1234 and report.input_to_photon_ms == 42.5

    delays = await page.evaluate(
        """async () => (await import("/client/js/protocol.js")).KEY_COPY_DELAYS_MS"""
    )
    assert delays == [round(d * 1000) for d in protocol.KEY_COPY_DELAYS]


async def test_access_token_from_the_page_url(browser: Browser) -> None:
    config = _config()
    config.token = "s3cret-token"
    server = await start_server(config)
    try:
        # Without the token the server refuses, and the page says why.
        page = await _open(browser, server.url)
        await _connect(page, "probe")
        await _state(page, "failed")
        assert len(server.app[SESSIONS]) == 0
        await _shot(page, "13-token-refused")
        await page.close()
        # With ?token= in the URL the page sends it and plays; its share link carries it.
        page = await _open(browser, f"{server.url}/?token=s3cret-token")
        await _connect(page, "probe")
        await _state(page, "playing")
        assert len(server.app[SESSIONS]) == 1
        share = await page.input_value("#share-player")
        assert "token=s3cret-token" in share and "join=" in share
        await page.close()
    finally:
        await server.runner.cleanup()
