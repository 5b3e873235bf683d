"""FEC on the seams: parity follows each frame through every send step; on the
receive side a lost packet is rebuilt and injected where NACK and reassembly see it."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from cloudarcade.client.nack import NackTracker
from cloudarcade.client.receive_steps import NackRequests
from cloudarcade.rtc.fec import FecEncoder, MediaPacket, protect
from cloudarcade.rtc.fec_steps import MIN_MEDIA_SHARE, FecReceive, FecSend
from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.seam import ReceiverSeam, ReceiveStep, RtpIn, TransportSeam, TransportStep
from cloudarcade.rtc.steps import Statistics

from .seam_fakes import RecordingTransport

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
MEDIA_SSRC, FEC_SSRC, FEC_PT = 1234, 777, 120


def _packet(seq: int, marker: bool, payload: bytes, *, ssrc: int = MEDIA_SSRC,
            pt: int = 102) -> RtpPacket:
    packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=3000, ssrc=ssrc)
    packet.marker = int(marker)
    packet.payload = payload
    return packet


class _Numbering(TransportStep):
    """Stands for transport-cc: numbers every packet it is handed."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        packet.set_extension(5, bytes([len(self.seen)]))
        self.seen.append(packet.ssrc)
        return None


async def test_parity_follows_the_marker_packet_through_every_step() -> None:
    transport = RecordingTransport()
    seam = TransportSeam(transport, clock=lambda: 1.0)  # type: ignore[arg-type]
    numbering = _Numbering()
    columns = [2]
    fec = FecSend(FecEncoder(media_ssrc=MEDIA_SSRC, ssrc=FEC_SSRC, payload_type=FEC_PT),
                  lambda: columns[0])
    seam.steps += [fec, numbering]
    seam.install()
    for seq in range(3):
        await transport._send_rtp(_packet(seq, seq == 2, b"x" * (10 + seq)).serialize())
    assert numbering.seen == [MEDIA_SSRC] * 3 + [FEC_SSRC] * 2
    parity = [RtpPacket.parse(data) for data in transport.out[3:]]
    assert [(p.ssrc, p.payload_type) for p in parity] == [(FEC_SSRC, FEC_PT)] * 2
    assert all(OutgoingRtp.parse(data).extensions.get(5) for data in transport.out[3:])
    # Two parity packets over three small ones: more than the share lets parity take.
    assert fec.media_share == MIN_MEDIA_SHARE
    # Off: frames go out alone, and the share climbs back.
    columns[0] = 0
    for seq in range(3, 200):
        await transport._send_rtp(_packet(seq, True, b"y" * 20).serialize())
    assert len(transport.out) == 5 + 197
    assert fec.media_share > 0.95


class _Recorder(ReceiveStep):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def rtp(self, item: RtpIn, now: float) -> RtpIn | None:
        self.seen.append(item.packet.sequence_number)
        return item


@pytest.fixture
async def receiver_seam():  # type: ignore[no-untyped-def]
    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    seam = ReceiverSeam(receiver, clock=lambda: 2.0)
    seam.codecs[102] = H264
    yield seam
    seam.close()
    await pc.close()


async def test_a_lost_packet_is_rebuilt_and_no_longer_nacked(receiver_seam: ReceiverSeam) -> None:
    seam = receiver_seam
    fec = FecReceive(payload_type=FEC_PT, ssrc=FEC_SSRC, codecs=seam.codecs)
    nack = NackRequests(NackTracker(), lambda: None)
    after = _Recorder()
    seam.steps += [fec, Statistics(seam.remote_streams), nack, after]
    seam.install()
    frame = [_packet(100 + i, i == 3, bytes([i]) * (5 + i)) for i in range(4)]
    receive = seam.receiver._handle_rtp_packet
    for packet in (frame[0], frame[2], frame[3]):  # 101 lost
        await receive(packet, arrival_time_ms=0)
    assert nack.tracker.missing == 1
    media = [MediaPacket.parse(p.serialize()) for p in frame]
    for parity in protect(media, 2):
        data = RtpPacket(payload_type=FEC_PT, sequence_number=1, timestamp=3000, ssrc=FEC_SSRC)
        data.payload = bytes(parity)
        await receive(data, arrival_time_ms=0)
    # Parity stops at the FEC step; the rebuilt packet goes down the rest of the chain.
    assert after.seen == [100, 102, 103, 101]
    assert fec.recovered == 1 and fec.parity_received == 2
    assert nack.tracker.missing == 0  # seen as received: not asked for again
    assert fec.injected() == []


async def test_bad_parity_is_counted_and_dropped(receiver_seam: ReceiverSeam) -> None:
    seam = receiver_seam
    fec = FecReceive(payload_type=FEC_PT, ssrc=FEC_SSRC, codecs=seam.codecs)
    after = _Recorder()
    seam.steps += [fec, after]
    seam.install()
    await seam.receiver._handle_rtp_packet(_packet(5, True, b"abc"), arrival_time_ms=0)
    bad = _packet(1, False, b"\x02short", ssrc=FEC_SSRC, pt=FEC_PT)
    await seam.receiver._handle_rtp_packet(bad, arrival_time_ms=0)
    assert fec.parity_errors == 1 and after.seen == [5]
