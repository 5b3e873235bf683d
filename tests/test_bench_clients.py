"""The sans-I/O parts of the bench's browser client: clock mapping, stage placement, joins."""

from __future__ import annotations

import pytest

from cloudarcade.bench.browser_stages import PageFrame, frame_stamps, receiver_window
from cloudarcade.bench.clients import CLIENTS, check_client
from cloudarcade.bench.clock_map import ClockMapping, ClockOffset
from cloudarcade.bench.probe_join import ProbeJoiner
from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.protocol import FrameTiming
from cloudarcade.stages import stage_durations


def test_clock_mapping_keeps_the_tightest_round_trip() -> None:
    mapping = ClockMapping()
    with pytest.raises(ValueError, match="no clock samples"):
        mapping.estimate()
    # The other clock runs 100 s ahead; a slow round trip reads it late.
    mapping.add(10.000, 110.009, 10.020)  # 20 ms round trip, answer skewed
    mapping.add(11.000, 111.0005, 11.001)  # 1 ms round trip
    mapping.add(12.002, 112.0, 12.0)  # the local clock went backwards: rejected
    estimate = mapping.estimate()
    assert estimate.offset == pytest.approx(100.0, abs=1e-9)
    assert estimate.uncertainty == pytest.approx(0.0005)
    assert estimate.samples == 2 and mapping.rejected == 1
    assert estimate.to_local(105.0) == pytest.approx(5.0)


def test_browser_stages_add_up_to_the_photon() -> None:
    clock = ClockOffset(offset=-1.0, uncertainty=0.0005, samples=3)
    before = {"jitterBufferDelay": 1.0, "jitterBufferEmittedCount": 100,
              "totalAssemblyTime": 0.0, "framesAssembledFromMultiplePackets": 0,
              "totalDecodeTime": 0.1, "framesDecoded": 100}
    after = {"jitterBufferDelay": 1.5, "jitterBufferEmittedCount": 200,
             "totalAssemblyTime": 0.1, "framesAssembledFromMultiplePackets": 50,
             "totalDecodeTime": 0.3, "framesDecoded": 200}
    window = receiver_window(before, after)
    # 5 ms a frame in the buffer, less 1 ms of assembly spread over all frames.
    assert window.jitter_buffer == pytest.approx(0.004)
    assert window.decode == pytest.approx(0.002) and window.frames == 100
    frame = PageFrame.parse({"id": 7, "seq": 3, "presented": 1020.0, "received": 1005.0,
                             "processing": 0.001})
    stamps = frame_stamps(frame, clock, window)
    assert stamps["photon"] == pytest.approx(2.020)  # page ms 1020 is bench second 2.020
    assert stamps["frame_complete"] == pytest.approx(2.005)
    assert stamps["decode_start"] == pytest.approx(2.009)
    assert stamps["decode_end"] == pytest.approx(2.010)
    stages = stage_durations(stamps)
    assert stages["present"] == pytest.approx(0.010)
    # A window mean longer than this frame's wait is clipped at the photon.
    late = PageFrame.parse({"id": 8, "seq": 3, "presented": 1007.0, "received": 1005.0})
    stamps = frame_stamps(late, clock, window)
    assert stamps["decode_start"] == stamps["decode_end"] == stamps["photon"]
    with pytest.raises(ValueError, match="'presented' must be a number"):
        PageFrame.parse({"id": 1, "seq": 0, "presented": "soon"})
    with pytest.raises(ValueError, match="'id' must be an integer"):
        PageFrame.parse({"id": -1, "seq": 0, "presented": 1.0})


def test_probe_joiner_waits_for_the_servers_record() -> None:
    frames: list[FrameResult] = []
    probes: list[ProbeResult] = []
    joiner = ProbeJoiner(frames.append, probes.append)
    joiner.pressed(5, input_sent=1.0)
    joiner.pressed(7, input_sent=1.1)
    joiner.frame(FrameResult(frame_id=10, input_seq=4, client={"photon": 1.05}))
    joiner.frame(FrameResult(frame_id=11, input_seq=6, client={"photon": 1.08}))
    joiner.frame(FrameResult(frame_id=11, input_seq=6, client={"photon": 1.09}))  # again
    assert joiner.stale == 1
    assert probes == []  # seen, but the server's record of frame 11 is not in yet
    joiner.record(FrameTiming(frame_id=11, input_seq=6, render_end=1.03))
    assert [p.seq for p in probes] == [5] and probes[0].input_to_photon == pytest.approx(0.08)
    joiner.record(FrameTiming(frame_id=12, input_seq=7))
    assert [f.frame_id for f in frames] == [11]
    assert [r.frame_id for r in joiner.undecoded_records()] == [12]
    joiner.finish()  # probe 7 never showed: reported as a miss
    assert [p.seq for p in probes] == [5, 7] and probes[1].frame is None


def test_unknown_client_names_the_known_ones() -> None:
    assert check_client("chromium") == "chromium"
    with pytest.raises(ValueError, match="known clients: headless, chromium"):
        check_client("firefox")
    assert set(CLIENTS) >= {"headless", "chromium"}
