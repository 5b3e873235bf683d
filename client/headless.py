"""The headless Python thin client: offer, receive, decode, send scripted inputs, measure.

It is the instrument the benchmark drives, so everything it measures is on
``time.monotonic()`` (the same clock as the server on this machine) and it
adds no latency of its own: frames come through the receive path of its media
stack (:mod:`cloudarcade.stacks`: ours, or aiortc's own track for the
baseline) and are timed the moment they are decoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc import RTCDataChannel, RTCSessionDescription

from cloudarcade import framecode, protocol
from cloudarcade.client.joiner import FrameJoined, FrameJoiner
from cloudarcade.client.receiver import VideoReceive
from cloudarcade.client.results import ClientSummary, FrameResult, ProbeResult
from cloudarcade.client.schedule import InputSchedule, run_schedule
from cloudarcade.client.signalling import ClientError, post_offer
from cloudarcade.ice import create_peer_connection
from cloudarcade.protocol import FRAMES_CHANNEL, FrameTiming
from cloudarcade.rtc import extensions
from cloudarcade.stacks import create_stack

logger = logging.getLogger(__name__)

__all__ = ["ClientError", "ClientOptions", "HeadlessClient", "play_headless"]


@dataclass
class ClientOptions:
    url: str = "http://127.0.0.1:8080"
    game: str | None = None
    resolution: str | None = None
    fps: int | None = None
    codec: str | None = None
    bitrate: str | int | None = None
    stack: str = "tuned"  # "tuned": our receive path; "stock": aiortc's own
    cc: str | None = None  # the server's congestion controller (None: its default)
    ladder: str | None = None  # "on" or "off": the server's resolution/rate ladder
    fec: str | None = None  # "auto" or "off": the server's FEC parity (docs/fec.md)
    seed: int | None = None
    profile: str | None = None  # ask the server for a netsim profile on the media path
    join: str | None = None  # a session's share token: watch or play that session
    role: str = "player"  # or "spectator"
    bind: str = "127.0.0.1"
    connect_timeout: float = 15.0
    # Scripted input: one key press every ``input_interval`` s, jittered by
    # ±50% so probes don't lock to the game tick.
    input_interval: float = 0.25
    input_key: str = "Space"
    input_seed: int = 1
    # Keep a copy of the luma of every Nth frame (by frame id) for PSNR/SSIM.
    sample_every: int | None = None

    def offer_fields(self) -> dict[str, Any]:
        fields = {
            "game": self.game, "resolution": self.resolution, "fps": self.fps,
            "codec": self.codec, "bitrate": self.bitrate, "stack": self.stack, "cc": self.cc,
            "ladder": self.ladder, "fec": self.fec, "seed": self.seed, "profile": self.profile,
            "join": self.join,
            "role": self.role,
        }
        return {k: v for k, v in fields.items() if v is not None}


class HeadlessClient:
    """Connects to a cloudarcade server and measures what it receives.

    ``on_frame`` and ``on_probe`` (optional) see every joined frame and every
    finished probe as it happens; the bench writes them to JSONL.
    """

    def __init__(
        self,
        options: ClientOptions,
        *,
        on_frame: Callable[[FrameResult], None] | None = None,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.options = options
        self._on_frame_cb = on_frame
        self._on_probe_cb = on_probe
        self.summary = ClientSummary()
        self.pc = create_peer_connection(options.bind)
        self._connected = asyncio.Event()
        self._failed: str | None = None
        self._channels: dict[str, RTCDataChannel] = {}
        self._frames_channel: RTCDataChannel | None = None
        self._stack = create_stack(options.stack)
        self._receiver: VideoReceive | None = None
        self._seq = 0
        self._joiner = FrameJoiner()
        self.session_id: int | None = None
        self.share: str | None = None
        self.role: str | None = None
        self.player: int | None = None
        self.latest_frame: av.VideoFrame | None = None

    async def connect(self) -> None:
        """Offer, get the answer, and wait until media flows or fail with ClientError."""
        pc = self.pc
        self._channels = {
            protocol.CHANNEL_EVENTS: pc.createDataChannel(protocol.CHANNEL_EVENTS),
            # Full state in every message: a lost one is corrected by the next.
            protocol.CHANNEL_STATE: pc.createDataChannel(
                protocol.CHANNEL_STATE, ordered=False, maxRetransmits=0
            ),
        }
        # Reliable but unordered: a late record must not hold up the next one.
        self._frames_channel = pc.createDataChannel(FRAMES_CHANNEL, ordered=False)
        self._frames_channel.on("message", self._on_record)
        transceiver = pc.addTransceiver("video", direction="recvonly")
        self._receiver = self._stack.create_receiver(pc, transceiver, self._handle_frame)
        pc.on("connectionstatechange", self._on_state)

        offer = await pc.createOffer()
        wanted = self._stack.header_extensions
        sdp = extensions.add_to_offer(offer.sdp, wanted)
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        # aiortc writes its local description anew and drops attributes it does not
        # know: what else the stack asks for goes into the SDP as sent.
        body = {"sdp": self._stack.client_offer(pc.localDescription.sdp), "type": "offer",
                **self.options.offer_fields()}
        answer = await post_offer(self.options.url, body)
        self.session_id, self.share = answer.session, answer.share
        self.role, self.player = answer.role, answer.player
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        extensions.negotiate(transceiver, answer.sdp, wanted)
        try:
            self._receiver.answered(answer.sdp)
        except ValueError as exc:
            raise ClientError(f"the server's answer: {exc}") from None
        try:
            await asyncio.wait_for(self._connected.wait(), self.options.connect_timeout)
        except TimeoutError:
            raise ClientError(
                f"no connection within {self.options.connect_timeout:.0f} s "
                f"(ICE state {pc.iceConnectionState})"
            ) from None
        if self._failed:
            raise ClientError(self._failed)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        logger.info("client connection %s", state)
        if state == "connected":
            self._connected.set()
        elif state == "failed":
            self._failed = "connection failed (ICE or DTLS)"
            self._connected.set()

    def send_input(self, event: protocol.InputEvent) -> None:
        """Send an input on the channel the protocol assigns it (dropped if not open).

        A key event also goes as copies on the unreliable channel, at
        ``protocol.KEY_COPY_DELAYS``, so that a lost packet does not cost an SCTP
        retransmission (docs/protocol.md); the server applies the first to arrive.
        """
        text = protocol.encode(event)
        if not self._send(protocol.channel_for(event), text):
            return
        if isinstance(event, protocol.KeyEvent):
            loop = asyncio.get_running_loop()
            for delay in protocol.KEY_COPY_DELAYS:
                if delay == 0:
                    self._send(protocol.CHANNEL_STATE, text)
                else:
                    # Each copy its own datagram: aiortc sends one SCTP chunk per packet.
                    loop.call_later(delay, self._send, protocol.CHANNEL_STATE, text)

    def _send(self, label: str, text: str) -> bool:
        channel = self._channels.get(label)
        if channel is None or channel.readyState != "open":
            return False
        channel.send(text)
        return True

    @property
    def receiver_stats(self) -> dict[str, int] | None:
        """The receive path's counters (packets, NACKs, PLIs, ...); None for stock."""
        return self._receiver.stats if self._receiver is not None else None

    def on_decoded(
        self, frame: av.VideoFrame, code: framecode.FrameCode | None, client: dict[str, float]
    ) -> None:
        """Called for every decoded frame after it is counted; a hook for subclasses."""

    def press(self, code: str) -> int:
        """Send a key press (down then up); returns the seq of the key-down probe."""
        now = time.monotonic()
        self._seq += 1
        down = self._seq
        probe = ProbeResult(seq=down, input_sent=now)
        self._joiner.probe_sent(probe)
        self.summary.probes.append(probe)
        self.send_input(protocol.KeyEvent(seq=down, ts=now, code=code, down=True))
        self._seq += 1
        up = protocol.KeyEvent(seq=self._seq, ts=time.monotonic(), code=code, down=False)
        self.send_input(up)
        return down

    async def run_inputs(self, duration: float) -> None:
        """Press ``input_key`` at jittered intervals for ``duration`` seconds."""
        start = time.monotonic()
        schedule = InputSchedule(self.options.input_interval, seed=self.options.input_seed,
                                 start=start, end=start + duration)
        await run_schedule(schedule, lambda: self.press(self.options.input_key))

    async def wait_for_frames(self, count: int, timeout: float) -> None:
        """Wait until ``count`` frames have decoded; ClientError after ``timeout``."""
        end = time.monotonic() + timeout
        while self.summary.frames_decoded < count:
            if time.monotonic() > end:
                raise ClientError(
                    f"only {self.summary.frames_decoded} of {count} frames decoded "
                    f"in {timeout:.0f} s"
                )
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._receiver is not None:
            stats = self._receiver.stats
            if stats is not None:
                self.summary.receiver = stats
            await self._receiver.aclose()
        await self.pc.close()

    # Frames.
    def _handle_frame(
        self, frame: av.VideoFrame, code: framecode.FrameCode | None, client: dict[str, float]
    ) -> None:
        s = self.summary
        self.latest_frame = frame
        s.frames_decoded += 1
        now = client["decode_end"]
        if s.first_frame is None:
            s.first_frame = now
        s.last_frame = now
        self.on_decoded(frame, code, client)
        if code is None:
            s.undecodable_codes += 1
            return
        s.frame_ids.append(code.frame_id)
        result = FrameResult(frame_id=code.frame_id, input_seq=code.input_seq, client=client)
        every = self.options.sample_every
        if every and code.frame_id % every == 0:
            result.luma = framecode.luma_view(frame)[:, : frame.width].copy()
        self._joiner.frame_decoded(result)
        self._drain()

    def _on_record(self, data: str | bytes) -> None:
        try:
            record = FrameTiming.parse(data)
        except ValueError as exc:
            logger.warning("%s", exc)
            return
        self._joiner.record_received(record)
        self._drain()

    def _drain(self) -> None:
        """Act on what the joiner completed."""
        while (event := self._joiner.next_event()) is not None:
            if isinstance(event, FrameJoined):
                frame, server = event.frame, event.frame.server
                assert server is not None
                self.summary.frame_latencies.append(frame.client["photon"] - server.render_end)
                if self._on_frame_cb is not None:
                    self._on_frame_cb(frame)
            elif self._on_probe_cb is not None:
                self._on_probe_cb(event.probe)

    def undecoded_records(self) -> list[FrameTiming]:
        """Server records of frames that were sent but never decoded (so far)."""
        return self._joiner.undecoded_records()

    async def packet_loss(self) -> float | None:
        """Fraction of video RTP packets lost, from the receiver's statistics."""
        report = await self.pc.getStats()
        lost = received = 0
        for stats in report.values():
            if stats.type == "inbound-rtp" and stats.kind == "video":
                lost += max(stats.packetsLost or 0, 0)
                received += stats.packetsReceived or 0
        total = lost + received
        return lost / total if total else None

    async def rtp_bytes_sent(self) -> tuple[float, int] | None:
        """(sender time in s, RTP payload bytes sent) from the sender's last report.

        Known on both stacks, since it comes from RTCP sender reports, not from
        our encoder; two readings give the stream's bitrate.
        """
        report = await self.pc.getStats()
        for stats in report.values():
            if stats.type == "remote-outbound-rtp" and stats.kind == "video":
                return stats.remoteTimestamp.timestamp(), int(stats.bytesSent)
        return None

    def finish(self) -> None:
        """Report probes that never showed up (misses) to ``on_probe``."""
        self._joiner.finish()
        self._drain()


async def play_headless(options: ClientOptions, duration: float) -> dict[str, Any]:
    """Connect, press keys for ``duration`` seconds, and return the JSON summary."""
    client = HeadlessClient(options)
    try:
        await client.connect()
        await client.wait_for_frames(1, options.connect_timeout)
        await client.run_inputs(duration)
        # Give the last probe a moment to come back before counting it missed.
        await asyncio.sleep(0.3)
    finally:
        await client.close()
    client.finish()
    summary = client.summary.to_dict()
    summary["session"] = client.session_id
    summary["stack"] = options.stack
    return summary
