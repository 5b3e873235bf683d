"""The clients a benchmark can measure with, by name: ``--client headless,chromium``.

A *client kind* lives for a whole run (``start``/``stop``: a browser is
launched once) and makes one :class:`BenchClient` per measured session. Every
kind measures the same thing on the bench's clock (``time.monotonic()``):
``input_sent`` when the probe left the client, ``photon`` when its effect was
shown, with the server's stages joined in between.

- ``headless``: the Python client; photon = the decoded picture.
- ``chromium``: the product's page in Debian's Chromium; photon = the
  ``presentationTime`` of the first changed frame (bench/chromium_client.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from cloudarcade.bench.records import DROP_NETWORK
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.protocol import FrameTiming

HEADLESS: Final = "headless"


class BenchClient(Protocol):
    """What the runner needs of a client for one measured session."""

    session_id: int | None
    # The drop phase of a frame that was sent and never seen (bench/records.py).
    unseen_phase: str

    async def connect(self) -> None: ...
    async def wait_for_frames(self, count: int, timeout: float) -> None: ...
    async def probe(self, code: str) -> int: ...
    async def rtp_bytes_sent(self) -> tuple[float, int] | None: ...
    async def packet_loss(self) -> float | None: ...
    async def close(self) -> None: ...
    def finish(self) -> None: ...
    def undecoded_records(self) -> list[FrameTiming]: ...
    def extras(self) -> dict[str, Any]: ...


class ClientKind(Protocol):
    """A kind of client, started once per run."""

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def create(
        self,
        options: ClientOptions,
        *,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> BenchClient: ...


class HeadlessBenchClient(HeadlessClient):
    """The headless client with the bench's interface."""

    # It sees every decoded picture, so a sent frame it never saw did not arrive whole.
    unseen_phase = DROP_NETWORK

    async def probe(self, code: str) -> int:
        return self.press(code)

    def extras(self) -> dict[str, Any]:
        # The receive path's FEC counters (docs/fec.md), once the client has closed.
        receiver = self.summary.receiver
        return {key: receiver[key] for key in ("fec_parity_received", "fec_recovered")
                if key in receiver}


class Headless:
    name = HEADLESS

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def create(
        self,
        options: ClientOptions,
        *,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> BenchClient:
        return HeadlessBenchClient(options, on_frame=on_frame, on_probe=on_probe)


def _chromium() -> ClientKind:
    from cloudarcade.bench.chromium_client import ChromiumBrowser  # Playwright: only when asked

    return ChromiumBrowser()


CLIENTS: Final[dict[str, Callable[[], ClientKind]]] = {
    HEADLESS: Headless,
    "chromium": _chromium,
}


def check_client(name: str) -> str:
    """``name`` if it is a known client; ValueError listing the known ones."""
    if name not in CLIENTS:
        raise ValueError(f"unknown client {name!r}; known clients: {', '.join(CLIENTS)}")
    return name


def create_client_kind(name: str) -> ClientKind:
    return CLIENTS[check_client(name)]()
