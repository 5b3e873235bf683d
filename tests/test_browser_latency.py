"""Chromium on the tuned stack: playout-delay, latency measured in the page, the hidden strip.

One real server on 127.0.0.1 and one page in Debian's Chromium (Playwright,
``executable_path``) playing the probe game.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Browser, Page

from cloudarcade import framecode
from cloudarcade.rtc.extensions import PLAYOUT_DELAY
from cloudarcade.rtc.playout_delay import PlayoutDelayStep
from cloudarcade.server.app import SESSIONS

from .conftest import RunningServer
from .test_browser import _frames_beyond, _frames_decoded, _state, browser

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the fixture, shared with test_browser

# Counts every RTCPeerConnection the page makes, from before its scripts run.
COUNT_PEER_CONNECTIONS = """
window.__peerConnections = 0;
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Original {
  constructor(...args) { super(...args); window.__peerConnections += 1; }
};
"""


async def _playing(browser: Browser, server: RunningServer) -> Page:
    page = await browser.new_page(viewport={"width": 800, "height": 500})
    await page.add_init_script(COUNT_PEER_CONNECTIONS)
    await page.goto(server.url + "/?game=probe&resolution=640x360&fps=30&bitrate=1M"
                    "&autoconnect=1")
    await _state(page, "playing")
    await _frames_beyond(page, await _frames_decoded(page) + 5)
    return page


def _playout_steps(server: RunningServer) -> list[PlayoutDelayStep]:
    steps: list[PlayoutDelayStep] = []
    for session in server.app[SESSIONS].values():
        for viewer in session.viewers.values():
            transport = viewer._sender.transport if viewer._sender else None
            seam = getattr(transport, "_cloudarcade_seam", None)
            steps += [s for s in getattr(seam, "steps", []) if isinstance(s, PlayoutDelayStep)]
    return steps


async def test_playout_delay_measure_in_page_and_hidden_strip(
    server: RunningServer, browser: Browser
) -> None:
    page = await _playing(browser, server)

    # playout-delay: offered by Chromium, in the answer, configured on Chromium's
    # receiver, and written by the tuned stack on the packets the page received.
    negotiated = await page.evaluate(
        """() => {
            const pc = window.cloudarcade.connection.pc;
            const receiver = pc.getReceivers().find((r) => r.track.kind === "video");
            return {
                answer: pc.remoteDescription.sdp.split("\\r\\n")
                    .filter((l) => l.startsWith("a=extmap:")),
                receiver: receiver.getParameters().headerExtensions.map((e) => [e.id, e.uri]),
            };
        }"""
    )
    answer = [line for line in negotiated["answer"] if line.endswith(" " + PLAYOUT_DELAY)]
    assert answer, negotiated["answer"]
    ext_id = int(answer[0].split(":")[1].split()[0])
    assert [ext_id, PLAYOUT_DELAY] in negotiated["receiver"], negotiated["receiver"]
    (step,) = _playout_steps(server)
    assert step.extension_id == ext_id and step.value == b"\x00\x00\x00"
    received = await page.evaluate(
        """async () => {
            let packets = 0;
            (await window.cloudarcade.connection.pc.getStats()).forEach((s) => {
                if (s.type === "inbound-rtp" && s.kind === "video") packets = s.packetsReceived;
            });
            return packets;
        }"""
    )
    assert step.written > 0 and received > 0
    assert received <= step.written  # every video packet the page got carried it

    # Measure latency on the stream being played: no second peer connection.
    outcome = await page.evaluate("window.cloudarcade.measure({presses: 12})")
    assert outcome is not None, await page.text_content("#latency-result")
    assert len(outcome["samples"]) >= 10 and 0 < outcome["p50"] <= outcome["p95"], outcome
    assert await page.evaluate("window.__peerConnections") == 1
    assert len(server.app[SESSIONS]) == 1

    # The frame code's strip is cropped from what the player sees, and still read.
    band = framecode.band_height(640)
    assert await page.evaluate("document.getElementById('video').style.objectViewBox") == (
        f"inset({band}px 0px 0px)")
    shot = Image.open(io.BytesIO(await page.locator("#video").screenshot())).convert("L")
    pixels = np.asarray(shot)
    # The top rows of the picture's middle third (the video is letterboxed at the sides):
    # the probe game's flat background, where the code strip would be black and white.
    top = pixels[1:6, pixels.shape[1] // 3 : 2 * pixels.shape[1] // 3]
    assert int(top.max()) - int(top.min()) < 40, (top.min(), top.max())
