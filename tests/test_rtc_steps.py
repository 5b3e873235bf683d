"""The aiortc seam's steps and packet views, sans I/O on a fake clock."""

from __future__ import annotations

import logging

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket, RtpPacket

from cloudarcade.client.assembler import AssembledFrame
from cloudarcade.client.nack import NackTracker
from cloudarcade.client.receive_steps import NackRequests, Reassembly
from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.seam import ReceiverSeam, ReceiveStep, RtpIn, TransportSeam, TransportStep
from cloudarcade.rtc.steps import RtxUnwrap, Statistics

from .seam_fakes import RecordingTransport

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=103,
                            parameters={"apt": 102})
IDR = b"\x18\x00\x02\x65\x88"  # STAP-A holding an IDR slice's first bytes
P_SLICE = b"\x41\x9a"


def _map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(
            id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]))
    return extensions


def _packet(seq: int, ts: int, marker: bool, payload: bytes, pt: int = 102) -> RtpPacket:
    packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=1234)
    packet.marker = int(marker)
    packet.payload = payload
    return packet


def test_outgoing_view_keeps_aiortcs_bytes_and_adds_an_extension_it_does_not_know() -> None:
    packet = _packet(7, 9000, True, b"payload")
    packet.extensions.mid = "0"
    packet.extensions.abs_send_time = 0x123456
    data = packet.serialize(_map())
    view = OutgoingRtp.parse(data)
    assert bytes(view) == data
    assert (view.sequence_number, view.marker, view.payload) == (7, True, b"payload")
    view.set_extension(5, b"\x00\x00\x00")  # playout-delay min=max=0, unknown to aiortc
    back = RtpPacket.parse(bytes(view), _map())
    assert back.extensions.abs_send_time == 0x123456 and back.extensions.mid == "0"
    assert back.payload == b"payload" and back.sequence_number == 7
    assert OutgoingRtp.parse(bytes(view)).extensions[5] == b"\x00\x00\x00"


def test_unknown_payload_types_stop_and_rtx_is_unwrapped() -> None:
    streams: dict[int, object] = {}
    stats, rtx = Statistics(streams), RtxUnwrap({5678: 1234}, {102: H264, 103: RTX})
    assert stats.rtp(RtpIn(_packet(1, 0, True, b"x", pt=99), None), 0.0) is None
    assert streams == {}
    wrapped = _packet(40, 0, True, b"\x00\x2aIDR", pt=103)
    wrapped.ssrc = 5678
    item = stats.rtp(RtpIn(wrapped, RTX), 0.0)
    assert item is not None and 5678 in streams
    unwrapped = rtx.rtp(item, 0.0)
    assert unwrapped is not None and unwrapped.codec is H264
    assert (unwrapped.packet.ssrc, unwrapped.packet.sequence_number) == (1234, 42)


def test_nack_at_once_then_retry_and_pli_when_a_frame_is_given_up() -> None:
    frames: list[AssembledFrame] = []

    def sink(frame: AssembledFrame) -> bool:
        frames.append(frame)
        return True

    reassembly = Reassembly(lambda codec: sink, loss_timeout=0.2, pli_interval=0.25)
    nack = NackRequests(NackTracker(retry_interval=0.02), lambda: reassembly.skipped_through)
    chain = [nack, reassembly]

    def receive(packet: RtpPacket, now: float) -> list[bytes]:
        item: RtpIn | None = RtpIn(packet, H264)
        for step in chain:
            assert item is not None
            item = step.rtp(item, now)
        return [fb.to_rtcp(99) for step in chain for fb in step.poll(now)]

    assert receive(_packet(10, 0, True, IDR), 0.0) == []
    assert len(frames) == 1 and frames[0].keyframe
    sent = receive(_packet(12, 3000, False, P_SLICE), 0.01)  # 11 is lost
    [feedback] = RtcpPacket.parse(sent[0])
    assert isinstance(feedback, RtcpRtpfbPacket) and feedback.lost == [11]
    assert nack.next_wakeup() == 0.01 + 0.02
    receive(_packet(14, 6000, True, P_SLICE), 0.02)  # a later frame's marker
    # 0.2 s stuck with a later frame complete: given up, NACKs stop, a PLI goes out.
    sent = [fb.to_rtcp(99) for step in chain for fb in step.poll(0.25)]
    parsed = [p for data in sent for p in RtcpPacket.parse(data)]
    assert [type(p) for p in parsed] == [RtcpRtpfbPacket, RtcpPsfbPacket]
    sent = [fb.to_rtcp(99) for step in chain for fb in step.poll(0.3)]
    assert sent == [] and nack.tracker.missing == 0 and reassembly.plis_sent == 1


def test_a_decoder_that_falls_behind_is_warned_of_once_an_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    accept = [True]
    reassembly = Reassembly(lambda codec: lambda frame: accept[0])
    receive = reassembly.rtp
    receive(RtpIn(_packet(1, 0, True, IDR), H264), 0.0)
    accept[0] = False
    with caplog.at_level(logging.WARNING, logger="cloudarcade.client.receive_steps"):
        for seq in range(2, 6):
            receive(RtpIn(_packet(seq, 3000 * seq, True, P_SLICE), H264), 0.01 * seq)
        accept[0] = True
        receive(RtpIn(_packet(6, 18000, True, IDR), H264), 0.06)
        accept[0] = False
        receive(RtpIn(_packet(7, 21000, True, P_SLICE), H264), 0.07)
    warnings = [r for r in caplog.records if "fell behind" in r.getMessage()]
    assert len(warnings) == 2  # one per episode, not one per refused frame
    assert reassembly.assembler is not None and reassembly.assembler.keyframe_needed


class _Stamp(TransportStep):
    def __init__(self) -> None:
        self.sent_sizes: list[int] = []

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        packet.set_extension(5, b"\x00\x00\x00")
        return None

    def sent(self, packet: OutgoingRtp, size: int, now: float) -> None:
        self.sent_sizes.append(size)


async def test_transport_seam_hands_rtp_to_steps_and_passes_rtcp_through() -> None:
    transport = RecordingTransport()
    seam = TransportSeam(transport, clock=lambda: 1.0)  # type: ignore[arg-type]
    step = _Stamp()
    seam.steps.append(step)
    seam.install()
    rtp = _packet(1, 0, True, b"abc").serialize(_map())
    rtcp = bytes(RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2))
    await transport._send_rtp(rtp)
    await transport._send_rtp(rtcp)
    assert transport.out[1] == rtcp
    assert OutgoingRtp.parse(transport.out[0]).extensions == {5: b"\x00\x00\x00"}
    assert step.sent_sizes == [len(transport.out[0])]


class _SlowTransport(RecordingTransport):
    """Its send takes 150 ms on the fake clock (the process descheduled mid-send)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.sent_at: list[float] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent_at.append(self.clock[0])
        await super()._send_rtp(data)
        self.clock[0] += 0.150


class _SentTimes(TransportStep):
    def __init__(self) -> None:
        self.times: list[float] = []

    def sent(self, packet: OutgoingRtp, size: int, now: float) -> None:
        self.times.append(now)


async def test_a_packet_is_stamped_before_its_send_so_a_pause_cannot_make_it_early() -> None:
    # A send time read after the socket write is late by any pause in between;
    # the packet's one-way delay then reads too small, and the 10 s minimum that
    # queueing is measured from keeps the error (docs/congestion.md).
    clock = [10.0]
    transport = _SlowTransport(clock)
    seam = TransportSeam(transport, clock=lambda: clock[0])  # type: ignore[arg-type]
    step = _SentTimes()
    seam.steps.append(step)
    seam.install()
    await transport._send_rtp(_packet(1, 0, True, b"abc").serialize(_map()))
    await transport._send_rtp(_packet(2, 0, True, b"abc").serialize(_map()))
    assert step.times == transport.sent_at == [10.0, 10.15]


class _Recorder(ReceiveStep):
    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        self.seen.append((item.packet.sequence_number, now))
        return item


async def test_receiver_seam_keeps_aiortcs_enabled_check_and_source_tracking() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        seam = ReceiverSeam(receiver, clock=lambda: 5.0)
        step = _Recorder()
        seam.steps.append(step)
        seam.install()
        await receiver._handle_rtp_packet(_packet(1, 0, True, b"x"), arrival_time_ms=0)
        assert step.seen == [(1, 5.0)]
        assert [s.source for s in receiver.getSynchronizationSources()] == [1234]
        receiver._enabled = False  # as aiortc does, a disabled receiver drops packets
        await receiver._handle_rtp_packet(_packet(2, 0, True, b"x"), arrival_time_ms=0)
        assert step.seen == [(1, 5.0)]
        seam.close()
    finally:
        await pc.close()


class _Broken(TransportStep, ReceiveStep):
    """Raises on its first packet each way, then behaves."""

    def __init__(self) -> None:
        self.failed: set[str] = set()

    def _once(self, what: str) -> None:
        if what not in self.failed:
            self.failed.add(what)
            raise RuntimeError(f"broken {what}")

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        self._once("send")
        packet.set_extension(5, b"\x01")
        return None

    def rtcp_received(self, data: bytes, now: float) -> bytes | None:
        self._once("rtcp")
        return b""

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        self._once("rtp")
        return item


async def test_a_step_that_raises_costs_one_packet_not_the_session() -> None:
    transport = RecordingTransport()
    passed_on: list[bytes] = []

    async def aiortc_rtcp(data: bytes) -> None:
        passed_on.append(data)

    transport._handle_rtcp_data = aiortc_rtcp  # type: ignore[method-assign]
    seam = TransportSeam(transport, clock=lambda: 1.0)  # type: ignore[arg-type]
    broken = _Broken()
    seam.steps.append(broken)
    counted: list[int] = []
    seam.errors.on_error = lambda: counted.append(1)  # the server counts it in Prometheus
    seam.install()
    first, second = (_packet(seq, 0, True, b"abc").serialize(_map()) for seq in (1, 2))
    await transport._send_rtp(first)  # the step raises: out as aiortc serialized it
    await transport._send_rtp(second)  # and the seam still works
    assert transport.out[0] == first
    assert OutgoingRtp.parse(transport.out[1]).extensions == {5: b"\x01"}
    rtcp = bytes(RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2))
    await transport._handle_rtcp_data(rtcp)  # raises: aiortc still gets it
    await transport._handle_rtcp_data(rtcp)  # taken out, as the step says
    assert passed_on == [rtcp]
    assert seam.errors.count == 2 == len(counted)

    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        receive = ReceiverSeam(receiver, clock=lambda: 5.0)
        after = _Recorder()
        receive.steps += [_Broken(), after]
        receive.install()
        await receiver._handle_rtp_packet(_packet(1, 0, True, b"x"), arrival_time_ms=0)
        await receiver._handle_rtp_packet(_packet(2, 0, True, b"x"), arrival_time_ms=0)
        assert after.seen == [(2, 5.0)]  # the first was dropped, the second went on
        assert receive.errors.count == 1
        receive.close()
    finally:
        await pc.close()
