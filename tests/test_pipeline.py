"""The server's hand-offs: latest-wins mailbox, bounded sender backlog; ICE stays local."""

from __future__ import annotations

import asyncio
import threading

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from cloudarcade.encoder import EncodedFrame
from cloudarcade.protocol import FrameTiming
from cloudarcade.server.pipeline import Mailbox, RenderedFrame
from cloudarcade.server.tracks import PacketTrack


def _raw(frame_id: int) -> RenderedFrame:
    return RenderedFrame(av.VideoFrame(16, 16, "yuv420p"), FrameTiming(frame_id=frame_id))


def _encoded_frame(encoded: EncodedFrame, frame_id: int) -> RenderedFrame:
    return RenderedFrame(av.VideoFrame(16, 16, "yuv420p"), FrameTiming(frame_id=frame_id),
                         encoded)


def test_mailbox_keeps_only_the_latest_frame() -> None:
    box = Mailbox()
    assert box.put(_raw(1)) is None
    replaced = box.put(_raw(2))  # the encoder was busy: frame 1 is dropped, not queued
    assert replaced is not None and replaced.timing.frame_id == 1
    got = box.get()
    assert got is not None and got.timing.frame_id == 2


def test_mailbox_close_wakes_a_waiting_reader() -> None:
    box = Mailbox()
    result: list[RenderedFrame | None] = []
    reader = threading.Thread(target=lambda: result.append(box.get()))
    reader.start()
    box.close()
    reader.join(timeout=5)
    assert not reader.is_alive() and result == [None]


async def test_packet_track_bounds_its_backlog_and_reports_sends() -> None:
    sent: list[int] = []
    overflows: list[int] = []
    track = PacketTrack(on_sent=lambda t: sent.append(t.frame_id),
                        on_overflow=overflows.append, max_backlog=3)

    def encoded(i: int) -> EncodedFrame:
        packet = av.Packet(b"\x00\x00\x00\x01\x65" + bytes([i]))
        return EncodedFrame(packet=packet, keyframe=i == 0, size=6, encode_start=0.0,
                            encode_end=0.0)

    for i in range(3):
        track.put(_encoded_frame(encoded(i), i))
    assert overflows == []
    track.put(_encoded_frame(encoded(3), 3))  # a 4th waiting frame: flush, ask for IDR
    assert overflows == [3]
    packet = await track.recv()
    assert bytes(packet)[-1] == 3
    track.put(_encoded_frame(encoded(4), 4))
    await track.recv()
    # Coming back for the next packet means the previous frame was sent.
    assert sent == [3]
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 1)


def test_every_frame_says_when_the_input_it_shows_arrived() -> None:
    """The frame of the tick that applied an input may never be sent (the mailbox
    keeps the latest, congestion control skips one): the frames after it show the
    same input and must carry its arrival too, or a probe joined to one of them
    loses its uplink and tick-wait stages."""
    from cloudarcade.protocol import KeyEvent
    from cloudarcade.server.games import create_game
    from cloudarcade.server.pipeline import Pipeline
    from cloudarcade.server.sinks import FrameSink

    frames: list[RenderedFrame] = []
    applied: list[float] = []
    pipeline = Pipeline(create_game("probe", width=320, height=180), 320, 180, 30,
                        sink=FrameSink(frames.append, lambda phase: None),
                        on_applied=applied.append)
    pipeline._tick(0)  # no input yet
    pipeline.push_input(KeyEvent(seq=1, ts=0.0, code="Space", down=True), 0, 12.5)
    for tick in range(1, 4):
        pipeline._tick(tick)
    assert [f.timing.input_recv for f in frames] == [None, 12.5, 12.5, 12.5]
    assert [f.timing.input_seq for f in frames] == [0, 1, 1, 1]
    assert len(applied) == 1  # the metric counts the applying tick once
