"""The names of the timestamps on the path of one input, and of the stages between them.

These names are the one schema shared by the JSONL records, the Prometheus
``stage`` label and the report columns (see DESIGN.md, "The path of one input").

All timestamps are seconds on ``time.monotonic()``. On Linux that is
CLOCK_MONOTONIC, one clock for every process on the machine, so a server and a
client on the same host compare their stamps directly. Across machines an
offset has to be estimated first.
"""

from __future__ import annotations

from typing import Final

# Timestamps, in path order.
INPUT_SENT: Final = "input_sent"
INPUT_RECV: Final = "input_recv"
TICK_START: Final = "tick_start"
SIM_END: Final = "sim_end"
RENDER_END: Final = "render_end"
CONVERT_END: Final = "convert_end"
ENCODE_START: Final = "encode_start"
ENCODE_END: Final = "encode_end"
PACKETIZED: Final = "packetized"
LAST_PACKET_SENT: Final = "last_packet_sent"
FIRST_PACKET_RECV: Final = "first_packet_recv"
FRAME_COMPLETE: Final = "frame_complete"
DECODE_START: Final = "decode_start"
DECODE_END: Final = "decode_end"
PHOTON: Final = "photon"

TIMESTAMPS: Final = (
    INPUT_SENT,
    INPUT_RECV,
    TICK_START,
    SIM_END,
    RENDER_END,
    CONVERT_END,
    ENCODE_START,
    ENCODE_END,
    PACKETIZED,
    LAST_PACKET_SENT,
    FIRST_PACKET_RECV,
    FRAME_COMPLETE,
    DECODE_START,
    DECODE_END,
    PHOTON,
)

# Stages: (name, from timestamp, to timestamp). Their sum is photon - input_sent.
STAGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("uplink", INPUT_SENT, INPUT_RECV),
    ("tick_wait", INPUT_RECV, TICK_START),
    ("simulate", TICK_START, SIM_END),
    ("render", SIM_END, RENDER_END),
    ("convert", RENDER_END, CONVERT_END),
    ("encode_wait", CONVERT_END, ENCODE_START),
    ("encode", ENCODE_START, ENCODE_END),
    ("packetize", ENCODE_END, PACKETIZED),
    ("send", PACKETIZED, LAST_PACKET_SENT),
    # Network time of the frame's last packet, plus any wait for an earlier one.
    ("downlink", LAST_PACKET_SENT, FRAME_COMPLETE),
    # Jitter buffer release and decoder queue.
    ("reassembly", FRAME_COMPLETE, DECODE_START),
    ("decode", DECODE_START, DECODE_END),
    ("present", DECODE_END, PHOTON),
)
STAGE_NAMES: Final = (*(name for name, _, _ in STAGES), "unaccounted")

INPUT_TO_PHOTON: Final = "input_to_photon"


def stage_durations(stamps: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each stage whose two ends are both in ``stamps``.

    ``unaccounted`` is end-to-end minus the stages that could be computed, when
    both ends of the whole path are known.
    """
    out: dict[str, float] = {}
    for name, start, end in STAGES:
        if start in stamps and end in stamps:
            out[name] = stamps[end] - stamps[start]
    if INPUT_SENT in stamps and PHOTON in stamps:
        total = stamps[PHOTON] - stamps[INPUT_SENT]
        out["unaccounted"] = total - sum(out.values())
    return out
