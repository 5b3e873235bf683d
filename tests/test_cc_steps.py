"""Congestion-control steps on the seams, driven by hand with a fake clock."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import RtpPacket

from cloudarcade.cc import CcState, Pacer, Remb, create_controller
from cloudarcade.cc.negotiation import add_transport_cc_feedback
from cloudarcade.cc.steps import SendSideCongestion, TransportFeedbackStep
from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.seam import RtpIn

M = 1_000_000
TRANSPORT_CC_ID = 5


def _outgoing(seq: int) -> OutgoingRtp:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=0, ssrc=1234,
                       payload=bytes(1100))
    return OutgoingRtp.parse(packet.serialize())


def test_sender_stamps_paces_and_follows_feedback() -> None:
    updates: list[CcState] = []
    controller = create_controller("gcc", initial=4 * M, min_rate=0.5 * M, max_rate=8 * M)
    step = SendSideCongestion(controller, extension_id=TRANSPORT_CC_ID,
                              on_update=updates.append, pacer=Pacer(4 * M))
    receiver = TransportFeedbackStep()
    # A 1.5 Mbit/s link, 20 ms each way; the sender offers its target each frame.
    in_flight: list[tuple[float, RtpPacket]] = []
    link_free = 0.0
    seq = 0
    for tick in range(4000):  # 4 s in 1 ms ticks
        now = tick / 1000
        if tick % 16 == 0:
            for _ in range(max(int(controller.target / 8 / 60 / 1100), 1)):
                packet = _outgoing(seq)
                seq += 1
                depart = step.send(packet, now) or now
                size = len(bytes(packet))
                step.sent(packet, size, depart)
                link_free = max(link_free, depart) + size * 8 / (1.5 * M)
                rtp = RtpPacket(payload_type=96, sequence_number=packet.sequence_number)
                rtp.extensions.transport_sequence_number = struct.unpack(
                    "!H", packet.extensions[TRANSPORT_CC_ID])[0]
                # sent() recorded the number it stamped, the one on the wire.
                assert packet.transport_sequence_number == rtp.extensions.transport_sequence_number
                in_flight.append((link_free + 0.02, rtp))
        while in_flight and in_flight[0][0] <= now:
            receiver.rtp(RtpIn(in_flight.pop(0)[1], None), now)
        for feedback in receiver.poll(now):
            rest = step.rtcp_received(feedback.to_rtcp(99), now + 0.02)
            assert rest == b""  # nothing left for aiortc to misread as a NACK
    assert receiver.feedback_sent > 20
    assert updates and updates[-1].target < 1.5 * M
    assert step.pacer is not None and step.pacer.rate == updates[-1].target


def test_remb_caps_the_target_and_other_rtcp_passes_through() -> None:
    updates: list[CcState] = []
    controller = create_controller("gcc", initial=4 * M, min_rate=0.5 * M, max_rate=8 * M)
    step = SendSideCongestion(controller, extension_id=None, on_update=updates.append)
    receiver_report = bytes([0x80, 201, 0, 1, 0, 0, 0, 1])
    assert step.rtcp_received(receiver_report, 0.0) is None
    rest = step.rtcp_received(receiver_report + bytes(Remb(5, 1_000_000, (1234,))), 0.0)
    assert rest == receiver_report
    assert updates[-1].target == 1_000_000
    packet = _outgoing(1)
    assert step.send(packet, 0.0) is None and packet.extensions == {}


def test_answer_gets_transport_cc_feedback_where_offered() -> None:
    offer = "\r\n".join(["m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=rtpmap:96 VP8/90000",
                         "a=rtcp-fb:96 transport-cc", "a=rtpmap:97 H264/90000", ""])
    answer = "\r\n".join(["m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=rtpmap:96 VP8/90000",
                          "a=rtcp-fb:96 nack", "a=rtpmap:97 H264/90000", ""])
    munged = add_transport_cc_feedback(answer, offer)
    assert munged.split("\r\n")[2] == "a=rtcp-fb:96 transport-cc"
    assert "a=rtcp-fb:97 transport-cc" not in munged
    assert add_transport_cc_feedback(munged, offer) == munged
    assert add_transport_cc_feedback(answer, answer) == answer


def test_frame_record_carries_the_controller_state() -> None:
    from cloudarcade.protocol import FrameTiming, ProtocolError

    record = FrameTiming(frame_id=3, tick_start=1.0, sim_end=1.0, render_end=1.0,
                         convert_end=1.0, cc_target=2_500_000, cc_queueing=0.012)
    parsed = FrameTiming.parse(record.to_json())
    assert (parsed.cc_target, parsed.cc_queueing) == (2_500_000, 0.012)
    assert "cc_target" not in parsed.stamps()
    bad = record.to_json().replace('"cc_queueing":0.012', '"cc_queueing":-1')
    with pytest.raises(ProtocolError, match="cc_queueing"):
        FrameTiming.parse(bad)
