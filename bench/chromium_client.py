"""The bench's Chromium client: the product's own page, in Debian's Chromium, measured.

Playwright drives ``/usr/bin/chromium`` (never a downloaded browser) to the
server's page with the cell's settings in the URL and ``autoconnect=1``; the
page plays the session as a tester's would. Its instrument
(``client/web/js/bench.js``) sends each probe through the page's own input
sender and logs every presented frame: ``presentationTime`` is the photon,
the frame code read from the picture says which frame and which input it
shows. The server's record of each frame comes on the ``frames`` channel of
the same connection; :class:`ProbeJoiner` joins the three.

Clocks: the page stamps on ``performance.now()``; a :class:`ClockMapping`
from round trips through ``page.evaluate`` maps it onto ``time.monotonic()``
(estimated after connecting and again at close; both go into the run's
extras with their uncertainty and the drift between them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Browser, Page, Playwright, async_playwright

from cloudarcade.bench.browser_stages import (
    PageFrame,
    ReceiverWindow,
    frame_stamps,
    receiver_window,
)
from cloudarcade.bench.clock_map import ClockMapping, ClockOffset
from cloudarcade.bench.probe_join import ProbeJoiner
from cloudarcade.bench.records import DROP_UNSHOWN
from cloudarcade.client.headless import ClientError, ClientOptions
from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.protocol import FrameTiming

logger = logging.getLogger(__name__)

CHROMIUM = os.environ.get("CLOUDARCADE_CHROMIUM", "/usr/bin/chromium")
# DESIGN.md, "Chromium as a client"; --disable-quic: nothing leaves 127.0.0.1.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
CLOCK_SAMPLES = 25
# The page's own "Measure latency" runs this many presses at the end of each session,
# on the same stream, so that its p50 can be set beside the bench's.
PAGE_MEASURE_PRESSES = 40
DRAIN_INTERVAL = 0.1  # s between drains of the page's logs


def chromium_path() -> str:
    """Debian's Chromium, or ClientError saying how to get it."""
    if not Path(CHROMIUM).exists():
        raise ClientError(f"{CHROMIUM}: no Chromium there; install the Debian package 'chromium' "
                          "or set CLOUDARCADE_CHROMIUM")
    return CHROMIUM


class ChromiumBrowser:
    """One headless Chromium for a whole run; a page per measured session."""

    name = "chromium"

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    async def start(self) -> None:
        executable = chromium_path()
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_FLAGS)
        )
        logger.info("chromium %s started", self._browser.version)

    async def stop(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        self._browser = self._playwright = None

    def create(
        self,
        options: ClientOptions,
        *,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> ChromiumClient:
        if self._browser is None:
            raise RuntimeError("ChromiumBrowser.start() first")
        return ChromiumClient(self._browser, options, on_frame=on_frame, on_probe=on_probe)


def page_url(options: ClientOptions) -> str:
    """The page with the session's settings in its URL (client/web/js/app.js reads them)."""
    fields = {k: v for k, v in options.offer_fields().items() if k not in ("join", "role")}
    fields["autoconnect"] = 1
    return options.url.rstrip("/") + "/?" + urlencode(fields)


class ChromiumClient:
    """A session played by the page in Chromium; the bench's client interface."""

    # The page sees painted frames only: an unseen one may have been lost, or not painted.
    unseen_phase = DROP_UNSHOWN

    def __init__(
        self,
        browser: Browser,
        options: ClientOptions,
        *,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.options = options
        self._browser = browser
        self._joiner = ProbeJoiner(on_frame, on_probe)
        self._page: Page | None = None
        self._poll: asyncio.Task[None] | None = None
        self._clock: ClockOffset | None = None
        self._clock_after: ClockOffset | None = None
        self._stats: dict[str, Any] | None = None
        self._stats_at_first_probe: dict[str, Any] | None = None
        self.frames_shown = 0
        self.unreadable = 0
        self.unmatched = 0
        self._page_measure: dict[str, Any] | None = None
        self.session_id: int | None = None

    async def connect(self) -> None:
        width, height = (int(v) for v in (self.options.resolution or "1280x720").split("x"))
        page = await self._browser.new_page(viewport={"width": max(width, 1024),
                                                      "height": height + 64})
        self._page = page
        page.on("console", lambda m: logger.debug("page console %s: %s", m.type, m.text))
        page.on("pageerror", lambda exc: logger.warning("page error: %s", exc))
        await page.goto(page_url(self.options))
        timeout = self.options.connect_timeout * 1000
        await page.wait_for_function(
            "['playing', 'failed'].includes(document.body.dataset.state)", timeout=timeout
        )
        if await page.evaluate("document.body.dataset.state") != "playing":
            notice = await page.inner_text("#notice")
            raise ClientError(f"the page did not connect: {' '.join(notice.split())}")
        self.session_id = await page.evaluate("window.cloudarcade.info?.session ?? null")
        self._clock = await self._estimate_clock()
        await page.evaluate("window.cloudarcade.bench.start()")
        self._poll = asyncio.ensure_future(self._poll_loop())

    async def _estimate_clock(self) -> ClockOffset:
        assert self._page is not None
        mapping = ClockMapping()
        for _ in range(CLOCK_SAMPLES):
            before = time.monotonic()
            remote = await self._page.evaluate("performance.now()")
            mapping.add(before, float(remote) / 1000, time.monotonic())
        estimate = mapping.estimate()
        logger.info("page clock offset %.6f s ± %.2f ms", estimate.offset,
                    estimate.uncertainty * 1000)
        return estimate

    async def _poll_loop(self) -> None:
        try:
            while True:
                await self._drain()
                await asyncio.sleep(DRAIN_INTERVAL)
        except asyncio.CancelledError:
            pass
        except Exception:  # the page closed under us: the measurement ends with what it has
            logger.exception("chromium client: draining the page failed")

    async def _drain(self) -> None:
        assert self._page is not None and self._clock is not None
        data = await self._page.evaluate("window.cloudarcade.bench.drain()")
        window = ReceiverWindow()
        stats = data.get("stats")
        if isinstance(stats, dict):
            window = receiver_window(self._stats, stats)
            self._stats = stats
        # The page's counts are cumulative.
        self.unreadable = int(data.get("unreadable") or 0)
        self.unmatched = int(data.get("unmatched") or 0)
        frames = []
        for raw in data.get("frames") or []:
            with _logged(ValueError):
                frames.append(PageFrame.parse(raw))
        for frame in frames:  # in the order presented
            self.frames_shown += 1
            self._joiner.frame(FrameResult(frame_id=frame.frame_id, input_seq=frame.input_seq,
                                           client=frame_stamps(frame, self._clock, window)))
        for raw in data.get("records") or []:
            with _logged(ValueError):
                self._joiner.record(FrameTiming.parse(raw))

    async def wait_for_frames(self, count: int, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self.frames_shown < count:
            if time.monotonic() > end:
                raise ClientError(f"the page showed {self.frames_shown} of {count} frames "
                                  f"with a readable frame code in {timeout:.0f} s")
            await asyncio.sleep(0.02)

    async def probe(self, code: str) -> int:
        """Press ``code`` in the page; the seq of its key-down."""
        assert self._page is not None and self._clock is not None
        if self._stats_at_first_probe is None:
            self._stats_at_first_probe = self._stats or {}
        sent = await self._page.evaluate("(code) => window.cloudarcade.bench.press(code)", code)
        seq = int(sent["seq"])
        self._joiner.pressed(seq, self._clock.to_local(float(sent["sent"]) / 1000))
        return seq

    async def rtp_bytes_sent(self) -> tuple[float, int] | None:
        """(bench time, RTP payload bytes received by the page): two give the bitrate."""
        stats = self._stats
        if not stats or self._clock is None or stats.get("bytesReceived") is None:
            return None
        return self._clock.to_local(float(stats["at"]) / 1000), int(stats["bytesReceived"])

    async def packet_loss(self) -> float | None:
        stats = self._stats or {}
        lost, received = stats.get("packetsLost"), stats.get("packetsReceived")
        if not isinstance(lost, int | float) or not isinstance(received, int | float):
            return None
        total = max(lost, 0) + received
        return max(lost, 0) / total if total else None

    async def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        page = self._page
        if page is None:
            return
        try:
            await self._drain()
            self._clock_after = await self._estimate_clock()
            await page.evaluate("window.cloudarcade.bench.stop()")
            self._page_measure = await page.evaluate(
                "(presses) => window.cloudarcade.measure({presses})", PAGE_MEASURE_PRESSES)
        except Exception as exc:  # a crashed page still gets closed
            logger.warning("chromium client: final drain failed: %s", exc)
        finally:
            self._page = None
            await page.close()

    def finish(self) -> None:
        self._joiner.finish()

    def undecoded_records(self) -> list[FrameTiming]:
        return self._joiner.undecoded_records()

    def extras(self) -> dict[str, Any]:
        """The clock mapping and the browser's receiver figures over the probes."""
        out: dict[str, Any] = {
            "frames_unreadable": self.unreadable,
            # Presented frames whose code never came, and repeated frame ids.
            "frames_unmatched": self.unmatched, "frames_stale": self._joiner.stale,
        }
        if self._clock is not None:
            out["page_clock"] = self._clock.to_dict()
            if self._clock_after is not None:
                out["page_clock_drift_ms"] = (self._clock_after.offset - self._clock.offset) * 1000
        measure = self._page_measure
        if measure is not None:
            out["page_measure_p50_ms"] = measure.get("p50")
            out["page_measure_p95_ms"] = measure.get("p95")
            out["page_measure_presses"] = len(measure.get("samples") or [])
            out["page_measure_misses"] = measure.get("misses")
        if self._stats is not None:
            window = receiver_window(self._stats_at_first_probe, self._stats)
            out["browser_jitter_buffer_ms"] = _ms(window.jitter_buffer)
            out["browser_jitter_buffer_target_ms"] = _ms(window.target)
            out["browser_decode_ms"] = _ms(window.decode)
        return out


@contextlib.contextmanager
def _logged(*errors: type[Exception]) -> Iterator[None]:
    """Log and skip one malformed item from the page instead of ending the run."""
    try:
        yield
    except errors as exc:
        logger.warning("%s", exc)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
