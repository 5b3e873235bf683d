"""Splitting a compound RTCP packet into its parts, and picking out congestion feedback."""

from __future__ import annotations

import struct

from .remb import FMT_AFB, RTCP_PSFB, Remb
from .twcc import FMT_TRANSPORT_CC, RTCP_RTPFB, TransportFeedback


def split_compound(data: bytes) -> list[bytes]:
    """The RTCP packets in ``data``, headers included; raises ValueError when malformed."""
    packets: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError(f"RTCP compound: {len(data) - pos} trailing bytes, expected >= 4")
        first, _, length = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != 2:
            raise ValueError(f"RTCP version {first >> 6} at byte {pos}: expected 2")
        end = pos + (length + 1) * 4
        if end > len(data):
            raise ValueError(f"RTCP packet at byte {pos}: length {end - pos} exceeds the data")
        packets.append(data[pos:end])
        pos = end
    return packets


def is_transport_cc(packet: bytes) -> bool:
    return len(packet) >= 2 and packet[1] == RTCP_RTPFB and packet[0] & 0x1F == FMT_TRANSPORT_CC


def is_remb(packet: bytes) -> bool:
    return (
        len(packet) >= 16
        and packet[1] == RTCP_PSFB
        and packet[0] & 0x1F == FMT_AFB
        and packet[12:16] == b"REMB"
    )


def congestion_feedback(data: bytes) -> tuple[list[TransportFeedback], list[Remb], bytes]:
    """Transport-cc and REMB packets from a compound, and the rest re-joined.

    The rest is what aiortc should still see: its RTPFB parser would misread
    transport-cc as NACK, and rejects padded ones, dropping the whole compound.
    """
    feedback: list[TransportFeedback] = []
    rembs: list[Remb] = []
    rest: list[bytes] = []
    for packet in split_compound(data):
        if is_transport_cc(packet):
            feedback.append(TransportFeedback.parse(packet))
        elif is_remb(packet):
            rembs.append(Remb.parse(packet))
        else:
            rest.append(packet)
    return feedback, rembs, b"".join(rest)
