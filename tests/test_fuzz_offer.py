"""Property tests for ``POST /offer``: whatever arrives, a 4xx JSON error or a 200, never a 500.

The server runs on its own event loop in a thread, so that hypothesis can drive
it from a plain (synchronous) test with ``http.client``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudarcade.server.app import SESSIONS, ServerConfig
from cloudarcade.server.limits import Limits
from cloudarcade.server.options import SessionOptions

from .conftest import RunningServer, start_server
from .test_robust_offer import _offer_sdp

pytestmark = pytest.mark.slow


class ThreadServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server")
        self.thread.start()
        config = ServerConfig(
            defaults=SessionOptions(game="probe", width=640, height=360, fps=30,
                                    bitrate=1_000_000),
            max_sessions=3, limits=Limits(ice_timeout=0.5),
        )
        self.running: RunningServer = self._call(start_server(config))
        self.port = int(self.running.url.rsplit(":", 1)[1])
        self.sdp: str = self._call(_offer_sdp())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self._call(self.running.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadServer]:
    server = ThreadServer()
    yield server
    # Still healthy after everything thrown at it.
    status, _, body = server.request("GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    server.close()


def _check(server: ThreadServer, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 200 or 400 <= status < 500 or status == 503, (status, body[:200])
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    answer = json.loads(body)
    if status == 200:
        assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
    else:
        assert isinstance(answer["error"], str) and answer["error"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_FIELDS = ("game", "resolution", "fps", "codec", "bitrate", "stack", "seed", "profile", "join",
           "role", "token")
_values = {
    "game": st.sampled_from(["probe", "pong", "swarm", "", "PROBE"]),
    "resolution": st.sampled_from(["640x360", "320x180", "641x360", "1x1", "99999x99999"])
    | st.text(max_size=12),
    "fps": st.integers(-5, 300) | st.floats(allow_nan=True) | st.text(max_size=5),
    "codec": st.sampled_from(["h264", "vp8", "libx264", "av1"]),
    "bitrate": st.sampled_from(["1M", "800k", "2.5M", "0", "1e9", "9" * 40])
    | st.integers(-1, 10**12),
    "stack": st.sampled_from(["tuned", "stock", "x"]),
    "role": st.sampled_from(["player", "spectator", "admin"]),
    "profile": st.sampled_from(["ideal", "wired", "5g-sa", "nope"]),
}


@st.composite
def offers(draw: st.DrawFn, sdp: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": draw(st.sampled_from(["offer"] * 8 + ["answer", 1]))}
    body["sdp"] = draw(st.sampled_from([sdp, sdp, "v=0\r\n", "v=0\r\nm=video 9 x\r\n"])
                       | st.text(max_size=40).map(lambda t: "v=0\r\n" + t))
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=5, unique=True)):
        strategy = _values.get(name, _json)
        body[name] = draw(st.one_of(strategy, strategy, strategy, _json))
    return body


_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(fuzz_server: ThreadServer, data: bytes) -> None:
    _check(fuzz_server, *fuzz_server.request("POST", "/offer", data))


@_SETTINGS
@given(value=_json)
def test_random_json(fuzz_server: ThreadServer, value: Any) -> None:
    raw = json.dumps(value).encode()
    _check(fuzz_server, *fuzz_server.request("POST", "/offer", raw,
                                            {"Content-Type": "application/json"}))


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_offers(fuzz_server: ThreadServer, data: st.DataObject) -> None:
    body = data.draw(offers(fuzz_server.sdp))
    raw = json.dumps(body).encode()
    status, headers, answer = fuzz_server.request("POST", "/offer", raw)
    _check(fuzz_server, status, headers, answer)


def test_sessions_of_unanswered_offers_are_reclaimed(fuzz_server: ThreadServer) -> None:
    body = json.dumps({"type": "offer", "sdp": fuzz_server.sdp}).encode()
    status, _, _ = fuzz_server.request("POST", "/offer", body)
    assert status in (200, 503)

    async def drained() -> bool:
        for _ in range(100):
            if not fuzz_server.running.app[SESSIONS]:
                return True
            await asyncio.sleep(0.05)
        return False

    assert fuzz_server._call(drained())
