"""The playout-delay header extension: its wire format and the step that writes it."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import pack_header_extensions

from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.playout_delay import PlayoutDelay, PlayoutDelayStep


def test_wire_format_round_trips_and_rejects_bad_values() -> None:
    assert bytes(PlayoutDelay()) == b"\x00\x00\x00"
    # 12 bits each in 10 ms units: min 100 ms = 10 = 0x00a, max 400 ms = 40 = 0x028.
    assert bytes(PlayoutDelay(100, 400)) == bytes([0x00, 0xA0, 0x28])
    assert PlayoutDelay.parse(bytes([0x00, 0xA0, 0x28])) == PlayoutDelay(100, 400)
    with pytest.raises(ValueError, match="multiple of 10 ms"):
        PlayoutDelay(5, 10)
    with pytest.raises(ValueError, match="min_ms 20 > max_ms 10"):
        PlayoutDelay(20, 10)
    with pytest.raises(ValueError, match="expected 3"):
        PlayoutDelay.parse(b"\x00\x00")


def test_step_writes_the_extension_on_every_packet() -> None:
    step = PlayoutDelayStep(extension_id=5)
    profile, extensions = pack_header_extensions([(2, b"\x01\x02\x03")])
    header = struct.pack("!BBHLLHH", 0x90, 0x80 | 102, 7, 90000, 1234, profile,
                         len(extensions) // 4)
    packet = OutgoingRtp.parse(header + extensions + b"\x65" * 20)
    assert step.send(packet, now=1.0) is None  # never holds a packet back
    wire = bytes(packet)
    parsed = OutgoingRtp.parse(wire)
    assert PlayoutDelay.parse(parsed.extensions[5]) == PlayoutDelay(0, 0)
    assert parsed.extensions[2] == b"\x01\x02\x03" and parsed.payload == packet.payload
    assert step.written == 1
