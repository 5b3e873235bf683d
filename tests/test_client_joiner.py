"""The client's join of probes, frames and server records, and its input schedule, sans I/O."""

from __future__ import annotations

import pytest

from cloudarcade.client.joiner import FrameJoined, FrameJoiner, ProbeDone
from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.client.schedule import InputSchedule
from cloudarcade.protocol import FrameTiming


def _frame(frame_id: int, input_seq: int) -> FrameResult:
    return FrameResult(frame_id=frame_id, input_seq=input_seq,
                       client={"decode_end": frame_id / 60, "photon": frame_id / 60})


def _events(joiner: FrameJoiner) -> list[FrameJoined | ProbeDone]:
    out = []
    while (event := joiner.next_event()) is not None:
        out.append(event)
    return out


def test_a_probe_is_done_when_its_frame_and_that_frames_record_are_both_in() -> None:
    joiner = FrameJoiner()
    probe = ProbeResult(seq=5, input_sent=0.0)
    joiner.probe_sent(probe)
    joiner.frame_decoded(_frame(10, input_seq=4))  # before the input: not its frame
    joiner.frame_decoded(_frame(11, input_seq=5))
    assert _events(joiner) == []  # no records yet
    joiner.record_received(FrameTiming(frame_id=11))
    joined, done = _events(joiner)
    assert isinstance(joined, FrameJoined) and joined.frame.frame_id == 11
    assert isinstance(done, ProbeDone) and not done.missed
    assert probe.frame is not None and probe.frame.frame_id == 11
    # Frame 10's record comes late: it joins; no probe is waiting on it.
    joiner.record_received(FrameTiming(frame_id=10))
    [late] = _events(joiner)
    assert isinstance(late, FrameJoined) and late.frame.frame_id == 10


def test_a_record_before_its_frame_joins_and_unanswered_probes_are_missed_at_finish() -> None:
    joiner = FrameJoiner()
    joiner.record_received(FrameTiming(frame_id=3))
    joiner.record_received(FrameTiming(frame_id=4))
    assert [r.frame_id for r in joiner.undecoded_records()] == [3, 4]
    joiner.probe_sent(ProbeResult(seq=1, input_sent=0.0))
    joiner.probe_sent(ProbeResult(seq=3, input_sent=0.1))
    joiner.frame_decoded(_frame(3, input_seq=1))
    joined, answered = _events(joiner)
    assert isinstance(joined, FrameJoined) and isinstance(answered, ProbeDone)
    assert answered.probe.seq == 1 and not answered.missed
    joiner.finish()
    [missed] = _events(joiner)
    assert isinstance(missed, ProbeDone) and missed.probe.seq == 3 and missed.missed
    assert [r.frame_id for r in joiner.undecoded_records()] == [4]


def test_joins_wait_at_most_the_window() -> None:
    joiner = FrameJoiner(window=2)
    for frame_id in range(4):
        joiner.record_received(FrameTiming(frame_id=frame_id))
    assert [r.frame_id for r in joiner.undecoded_records()] == [2, 3]


def test_the_schedule_is_seeded_jittered_absolute_and_bounded() -> None:
    times = list(InputSchedule(0.25, seed=1, start=100.0, count=200))
    assert times == list(InputSchedule(0.25, seed=1, start=100.0, count=200))
    gaps = [b - a for a, b in zip([100.0, *times], times, strict=False)]
    assert len(times) == 200 and all(0.125 <= g <= 0.375 for g in gaps)
    assert min(gaps) < 0.15 and max(gaps) > 0.35  # jittered, not a fixed period
    until = list(InputSchedule(0.25, seed=1, start=0.0, end=5.0))
    # The same gaps from the same seed, cut at the end time.
    assert until == pytest.approx([t - 100.0 for t in times[: len(until)]])
    assert until and max(until) < 5.0 and times[len(until)] - 100.0 >= 5.0
