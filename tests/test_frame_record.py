"""The server's per-frame records: one wire format, validated like input messages."""

from __future__ import annotations

import json

import pytest

from cloudarcade.protocol import FrameTiming, ProtocolError


def _record() -> FrameTiming:
    return FrameTiming(frame_id=7, input_seq=3, input_recv=1.5, tick_start=1.6, sim_end=1.61,
                       render_end=1.62, convert_end=1.63, encode_start=1.63, encode_end=1.64,
                       packetized=1.65, last_packet_sent=1.66, size_bytes=1200, keyframe=True,
                       width=960, height=540, fps=30)


def test_a_record_round_trips_and_lists_its_stamps_in_path_order() -> None:
    record = _record()
    assert FrameTiming.parse(record.to_json()) == record
    assert list(record.stamps()) == [
        "input_recv", "tick_start", "sim_end", "render_end", "convert_end", "encode_start",
        "encode_end", "packetized", "last_packet_sent",
    ]
    # The stock stack never encodes: its optional stamps stay unset.
    bare = FrameTiming(frame_id=1, tick_start=1.0, sim_end=1.0, render_end=1.0, convert_end=1.0)
    assert FrameTiming.parse(bare.to_json()) == bare and "encode_end" not in bare.stamps()


@pytest.mark.parametrize(("change", "reason", "names"), [
    ({"frame_id": "7"}, "malformed", "'frame_id'"),
    ({"render_end": -1.0}, "out_of_range", "'render_end'"),
    ({"keyframe": 1}, "malformed", "'keyframe'"),
    ({"encode_end": "soon"}, "malformed", "'encode_end'"),
    ({"tick_start": None}, "malformed", "'tick_start'"),
    ({"height": 0}, "out_of_range", "'height'"),
])
def test_a_bad_field_is_named(change: dict[str, object], reason: str, names: str) -> None:
    raw = json.loads(_record().to_json()) | change
    with pytest.raises(ProtocolError, match=names) as caught:
        FrameTiming.parse(json.dumps(raw))
    assert caught.value.reason == reason


def test_missing_fields_and_non_objects_are_rejected_and_unknown_fields_ignored() -> None:
    raw = json.loads(_record().to_json())
    del raw["size_bytes"]
    with pytest.raises(ProtocolError, match="'size_bytes': missing"):
        FrameTiming.parse(json.dumps(raw))
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        FrameTiming.parse("[1, 2]")
    extra = json.loads(_record().to_json()) | {"newer_stage": 2.0}
    assert FrameTiming.parse(json.dumps(extra)) == _record()
