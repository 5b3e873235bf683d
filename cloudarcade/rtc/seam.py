"""One seam per aiortc class, each handing ``(packet, now)`` to an ordered list of steps.

Like pion/interceptor: every RTP/RTCP feature is a small step, and the seam is
the only code that touches aiortc's private members (listed and checked in
:mod:`cloudarcade.rtc.contract`). Steps are sans-I/O: they take the packet
and ``now`` (``time.monotonic()`` seconds) and return what should happen; the
seam does the sending and arms the one timer.

- :class:`ReceiverSeam` (``RTCRtpReceiver``): incoming RTP, after SRTP and
  parsing. Replaces ``_handle_rtp_packet`` on the instance; keeps aiortc's
  ``_enabled`` check and active-SSRC bookkeeping, and leaves the rest
  (statistics, RTX, NACK, reassembly, REMB) to steps. A step may inject
  packets (FEC rebuilt them) that go on down the steps after it.
- :class:`SenderSeam` (``RTCRtpSender``): incoming RTCP for one sender. Wraps
  ``_handle_rtcp_packet``: steps see each packet, then aiortc handles it as
  before (retransmissions, RTT, stats).
- :class:`TransportSeam` (``RTCDtlsTransport``): every outgoing serialized RTP
  packet before SRTP (media and RTX of all senders on the transport), and the
  raw incoming RTCP before aiortc parses it. Steps may set header extensions,
  delay a packet (a pacer) and add packets after it (FEC parity); a packet no
  step changes goes out as aiortc serialized it.

A step that raises must not take aiortc's loops down with it: an exception
out of ``_handle_rtp_packet`` or ``_handle_rtcp_data`` ends the DTLS
transport's receive loop, and out of ``_send_rtp`` the sender's, and the
session is dead. Each seam catches what its steps raise (:class:`StepErrors`:
counted, logged at most once a second): the packet is dropped on the
receive side and goes out unchanged on the send side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.clock import current_datetime
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import AnyRtcpPacket, RtpPacket, is_rtcp

from cloudarcade.rtc import contract
from cloudarcade.rtc.packet import Feedback, OutgoingRtp

Clock = Callable[[], float]

logger = logging.getLogger(__name__)


class StepErrors:
    """What a seam's steps raised: counted, and logged with the traceback at most
    once a second (a broken step would otherwise log every packet)."""

    def __init__(self, seam: str) -> None:
        self.seam = seam
        self.count = 0
        self._logged: float | None = None
        self.on_error: Callable[[], None] | None = None  # a metric, say

    def record(self, what: str, now: float) -> None:
        """Call from an ``except`` block."""
        self.count += 1
        if self.on_error is not None:
            self.on_error()
        if self._logged is None or now - self._logged >= 1.0:
            self._logged = now
            logger.exception("%s: a step failed (%s); %d so far", self.seam, what, self.count)


# Receive side -----------------------------------------------------------------


@dataclass
class RtpIn:
    """An RTP packet moving down a receive chain, with its negotiated codec.

    ``codec`` is None for a payload type the receiver does not know.
    """

    packet: RtpPacket
    codec: RTCRtpCodecParameters | None


class ReceiveStep:
    """One stage of a receive chain; override what the stage needs.

    ``rtp`` returns the packet for the next step (possibly a new one: RTX
    unwrapped) or None to stop the chain here. ``poll`` runs after every
    packet and at every wake-up, in chain order, and returns the feedback to
    send now. ``next_wakeup`` says when ``poll`` next has something to do.
    """

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        return item

    def injected(self) -> list[RtpIn]:
        """Packets the step made (FEC rebuilt them, say) since it was last asked;
        the seam runs them through the steps after this one, as if received.
        Asked after each ``rtp`` of a step whose ``injects`` is True."""
        return []

    injects = False

    def poll(self, now: float) -> Iterable[Feedback]:
        return ()

    def next_wakeup(self) -> float | None:
        return None

    def close(self) -> None:
        """Release what the step holds; called once when the seam closes."""


class ReceiverSeam:
    """Runs an ``RTCRtpReceiver``'s incoming RTP through ``steps``.

    Build the steps with the state accessors below (they are the only readers
    of the receiver's private state), append them to ``steps``, then
    :meth:`install`.
    """

    def __init__(self, receiver: RTCRtpReceiver, *, clock: Clock = time.monotonic) -> None:
        contract.check()
        contract.require(receiver, contract.RECEIVER_ATTRIBUTES)
        self.receiver = receiver
        self.steps: list[ReceiveStep] = []
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self.errors = StepErrors("receiver seam")

    # aiortc's private state, by reference (pinned version, checked above).
    @property
    def codecs(self) -> dict[int, RTCRtpCodecParameters]:
        return self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined,no-any-return]

    @property
    def rtx_ssrc(self) -> dict[int, int]:
        return self.receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined,no-any-return]

    @property
    def remote_streams(self) -> dict[int, Any]:
        return self.receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined,no-any-return]

    @property
    def _active_ssrc(self) -> dict[int, Any]:
        return self.receiver._RTCRtpReceiver__active_ssrc  # type: ignore[attr-defined,no-any-return]

    @property
    def _rtcp_ssrc(self) -> int | None:
        return self.receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined,no-any-return]

    def install(self) -> None:
        self.receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]

    def route(self, *, ssrc: int, payload_type: int) -> None:
        """Have the transport hand this receiver RTP of ``ssrc`` with ``payload_type``,
        which was not negotiated as a codec (FEC parity): aiortc's router drops
        packets whose payload type no receiver registered. Call it once the
        remote description is set (the receiver is on its bundled transport)."""
        transport = self.receiver.transport
        contract.require(transport, contract.ROUTER_ATTRIBUTES)
        transport._rtp_router.register_receiver(
            self.receiver, ssrcs=[ssrc], payload_types=[payload_type])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for step in self.steps:
            step.close()

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        now = self._clock()
        if self._closed or not self.receiver._enabled:
            return
        # getSynchronizationSources() reads this (wall-clock datetimes, as aiortc keeps them).
        self._active_ssrc[packet.ssrc] = current_datetime()
        try:
            self._run(RtpIn(packet, self.codecs.get(packet.payload_type)), 0, now)
        except Exception:
            self.errors.record(f"RTP seq {packet.sequence_number} dropped", now)
        await self._service(now)

    def _run(self, item: RtpIn | None, start: int, now: float) -> None:
        steps = self.steps
        for index in range(start, len(steps)):
            assert item is not None
            step = steps[index]
            item = step.rtp(item, now)
            if step.injects:
                for made in step.injected():
                    self._run(made, index + 1, now)
            if item is None:
                break

    async def _service(self, now: float) -> None:
        """Send what the steps have due, then arm the one timer."""
        try:
            feedback = [fb for step in self.steps for fb in step.poll(now)]
        except Exception:
            self.errors.record("poll", now)
            feedback = []
        ssrc = self._rtcp_ssrc
        if ssrc is not None:  # unknown until negotiated; aiortc drops feedback too
            for fb in feedback:
                with contextlib.suppress(ConnectionError):
                    await self.receiver.transport._send_rtp(fb.to_rtcp(ssrc))
        self._arm()

    def _arm(self) -> None:
        if self._closed:
            return
        # A running minimum, not a list: this runs after every packet.
        at = None
        for step in self.steps:
            wake = step.next_wakeup()
            if wake is not None and (at is None or wake < at):
                at = wake
        if at is None:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(max(at - self._clock(), 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if not self._closed:
            self._loop.create_task(self._service(self._clock()))


# Sender, incoming RTCP -----------------------------------------------------------


class RtcpStep:
    """Sees each RTCP packet routed to a sender, before aiortc handles it."""

    def rtcp(self, packet: AnyRtcpPacket, now: float) -> None:
        pass


class SenderSeam:
    """Runs the RTCP that reaches an ``RTCRtpSender`` through ``steps``, then aiortc."""

    def __init__(self, sender: RTCRtpSender, *, clock: Clock = time.monotonic) -> None:
        contract.check()
        contract.require(sender, contract.SENDER_ATTRIBUTES)
        self.sender = sender
        self.steps: list[RtcpStep] = []
        self._clock = clock
        self.errors = StepErrors("sender seam")

    def install(self) -> None:
        original: Callable[[AnyRtcpPacket], Awaitable[None]] = self.sender._handle_rtcp_packet

        async def handle(packet: AnyRtcpPacket) -> None:
            now = self._clock()
            try:
                for step in self.steps:
                    step.rtcp(packet, now)
            except Exception:
                self.errors.record(type(packet).__name__, now)
            await original(packet)

        self.sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


# Transport: outgoing RTP, raw incoming RTCP ----------------------------------


class TransportStep:
    """Sees every RTP packet a DTLS transport sends, and the raw RTCP it receives.

    ``send`` may set header extensions (``packet.set_extension``; the packet is
    rewritten only if some step does) and returns the earliest time the
    packet may leave (None: now); the seam waits until the latest of those,
    which holds up aiortc's sender loop (a pacer). ``sent`` is told the
    packet's size and send time once it is out. ``rtcp_received`` gets each
    incoming compound RTCP datagram before aiortc parses it, and may take
    parts out (aiortc reads transport-cc feedback as if it were a NACK).
    """

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        return None

    def sent(self, packet: OutgoingRtp, size: int, now: float) -> None:
        pass

    def follow(self, packet: OutgoingRtp, now: float) -> list[bytes]:
        """Serialized RTP packets to send right after ``packet`` (FEC parity, say),
        through every step as if aiortc had sent them."""
        return []

    def rtcp_received(self, data: bytes, now: float) -> bytes | None:
        """See a compound RTCP datagram; return None to pass it on unchanged, or
        the bytes to pass on instead (b"": nothing left for aiortc)."""
        return None


class TransportSeam:
    """Runs an ``RTCDtlsTransport``'s outgoing RTP and incoming RTCP through ``steps``.

    Install it once the peer connection's descriptions are set (aiortc moves
    senders onto the bundled transport in ``setRemoteDescription``). With no
    steps, packets pass through untouched and unparsed.
    """

    def __init__(self, transport: RTCDtlsTransport, *, clock: Clock = time.monotonic) -> None:
        contract.check()
        contract.require(transport, contract.TRANSPORT_ATTRIBUTES)
        self.transport = transport
        self.steps: list[TransportStep] = []
        self._clock = clock
        self.errors = StepErrors("transport seam")

    def install(self) -> None:
        transport = self.transport
        if getattr(transport, "_cloudarcade_seam", None) is not None:
            raise RuntimeError(f"{transport!r} already has a TransportSeam")
        transport._cloudarcade_seam = self  # type: ignore[attr-defined]
        send_original: Callable[[bytes], Awaitable[None]] = transport._send_rtp
        rtcp_original: Callable[[bytes], Awaitable[None]] = transport._handle_rtcp_data

        async def send_rtp(data: bytes) -> None:
            if not self.steps or is_rtcp(data):
                await send_original(data)
                return
            packet = await send_one(data)
            if packet is None:
                return
            now = self._clock()
            try:
                extras = [extra for step in self.steps for extra in step.follow(packet, now)]
            except Exception:
                self.errors.record("follow", now)
                extras = []
            for extra in extras:
                await send_one(extra)

        async def send_one(data: bytes) -> OutgoingRtp | None:
            """Send ``data`` through the steps; None when a step failed on it (it
            went out as aiortc serialized it)."""
            now = self._clock()
            at: float | None = None
            try:
                packet = OutgoingRtp.parse(data)
                for step in self.steps:
                    wanted = step.send(packet, now)
                    if wanted is not None and (at is None or wanted > at):
                        at = wanted
                out = bytes(packet)
            except Exception:
                self.errors.record("send: the packet went out unchanged", now)
                await send_original(data)
                return None
            if at is not None and at > now:
                await asyncio.sleep(at - now)
            # The time just before the send, not after: a time read late (the
            # thread descheduled, or a GIL hand-off, between the socket write and
            # the clock) makes the packet's one-way delay too small, and the
            # 10 s minimum that queueing is measured from keeps that error for
            # 10 s: a 150 ms server pause read as a 150 ms standing queue in every
            # later feedback, and the target sat at its floor. Read early, the
            # error is one packet's delay too large.
            sent_at = self._clock()
            await send_original(out)
            try:
                for step in self.steps:
                    step.sent(packet, len(out), sent_at)
            except Exception:
                self.errors.record("sent", sent_at)
            return packet

        async def handle_rtcp_data(data: bytes) -> None:
            if self.steps:
                now = self._clock()
                original = data
                try:
                    for step in self.steps:
                        replaced = step.rtcp_received(data, now)
                        if replaced is not None:
                            data = replaced
                except Exception:
                    self.errors.record("incoming RTCP passed on unchanged", now)
                    data = original
            if data:
                await rtcp_original(data)

        transport._send_rtp = send_rtp  # type: ignore[method-assign]
        transport._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]
