"""The desktop window's client: a :class:`HeadlessClient` on its own asyncio loop in a thread.

:class:`StreamClient` adds what a window needs to the headless receive path (the
newest decoded frame, decode times, the negotiated codec, overlay counters);
:class:`ClientThread` runs it on a worker thread so that the window's scaling,
blitting and flipping never delay RTP handling, NACK timers or decoder hand-offs
(STYLE 6). The window reads ``client.latest`` (one reference, swapped whole) and
hands inputs over with :meth:`ClientThread.send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av

from cloudarcade import framecode, protocol, runtime
from cloudarcade.client.headless import ClientError, ClientOptions, HeadlessClient
from cloudarcade.client.overlay import STATS_WINDOW, Counters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Latest:
    """The newest decoded frame, swapped in whole by the loop thread."""

    frame: av.VideoFrame
    code: framecode.FrameCode | None
    decode_end: float


def answer_codec(sdp: str) -> str | None:
    """The first video codec of an SDP answer ("H264", "VP8"), None if there is none."""
    payloads: list[str] = []
    names: dict[str, str] = {}
    for line in sdp.splitlines():
        if line.startswith("m=video "):
            payloads = line.split()[3:]
        elif line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:"):].partition(" ")
            names.setdefault(pt, rest.split("/")[0])
    return names.get(payloads[0]) if payloads else None


class StreamClient(HeadlessClient):
    """HeadlessClient plus what a window needs: a frame hook and the overlay's figures."""

    def __init__(self, options: ClientOptions, on_new_frame: Callable[[], None]) -> None:
        super().__init__(options)
        self._on_new_frame = on_new_frame
        self.latest: Latest | None = None
        self.decode_times: deque[float] = deque(maxlen=STATS_WINDOW)
        self.codec: str | None = None

    async def connect(self) -> None:
        await super().connect()
        self.codec = answer_codec(self.pc.remoteDescription.sdp)

    def on_decoded(
        self, frame: av.VideoFrame, code: framecode.FrameCode | None, client: dict[str, float]
    ) -> None:
        if "decode_start" in client:
            self.decode_times.append(client["decode_end"] - client["decode_start"])
        self.latest = Latest(frame, code, client["decode_end"])
        self._on_new_frame()

    def counters(self) -> Counters:
        stats = self.receiver_stats
        return Counters(
            frames_received=stats["frames_released"] if stats else None,
            frames_decoded=self.summary.frames_decoded,
            packets=stats["packets"] if stats else None,
            nacks=stats["nacks_sent"] if stats else None,
            plis=stats["plis_sent"] if stats else None,
            frames_skipped=stats["frames_skipped"] if stats else None,
        )


class ClientThread:
    """Runs a :class:`StreamClient` on its own asyncio loop in a worker thread."""

    def __init__(self, options: ClientOptions, on_new_frame: Callable[[], None]) -> None:
        self._options = options
        self._on_new_frame = on_new_frame
        self.client: StreamClient | None = None
        self.connected = threading.Event()
        self.done = threading.Event()
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="window-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, event: protocol.InputEvent) -> None:
        loop, client = self._loop, self.client
        if loop is None or client is None or not self.connected.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody to tell
            loop.call_soon_threadsafe(client.send_input, event)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the client's task (which closes the client) and join the thread."""
        self._stopping = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("client thread did not stop within %.0f s", timeout)

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=runtime.loop_factory()) as runner:
                runner.run(self._main())
        except Exception as exc:
            logger.exception("client thread failed")
            self.error = self.error or f"client failed: {exc}"
        finally:
            self.done.set()

    async def _main(self) -> None:
        client = StreamClient(self._options, self._on_new_frame)
        self.client = client
        # Task before loop: stop() reads them in the other order (see stop()).
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        def on_state() -> None:
            if client.pc.connectionState in ("failed", "closed"):
                lost.set()

        try:
            if self._stopping:
                return
            await client.connect()
            client.pc.on("connectionstatechange", on_state)
            self.connected.set()
            await lost.wait()
            self.error = f"connection lost ({client.pc.connectionState})"
        except asyncio.CancelledError:
            if self._task is not None:
                self._task.uncancel()  # stop() asked for it: close normally below
        except ClientError as exc:
            self.error = str(exc)
        finally:
            await client.close()
