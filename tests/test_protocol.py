"""The input protocol: round trips, one representative message per reject reason, fuzzing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade import protocol
from cloudarcade.protocol import (
    CHANNEL_EVENTS,
    CHANNEL_STATE,
    MAX_MESSAGE_BYTES,
    REJECT_REASONS,
    KeyEvent,
    PadEvent,
    PointerEvent,
    ProtocolError,
    StatsReport,
    channel_for,
    encode,
    parse,
)

MESSAGES = [
    KeyEvent(seq=1, ts=12.5, code="KeyW", down=True),
    KeyEvent(seq=2**31 - 1, ts=0.0, code="ArrowUp", down=False),
    PointerEvent(seq=3, ts=1.25, x=0.0, y=1.0, dx=-10000.0, dy=3.5, buttons=31),
    PadEvent(seq=4, ts=2.0, index=3, buttons=(0.0, 1.0, 0.25), axes=(-1.0, 0.5)),
    PadEvent(seq=5, ts=2.0, index=0),
    StatsReport(ts=3.0),
    StatsReport(
        ts=3.0, fps=59.9, decode_ms=1.5, jitter_buffer_ms=6.6, freezes=0,
        input_to_photon_ms=42.0, rtt_ms=2.0, packets_lost=7, frames_decoded=1234,
    ),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: protocol.Message) -> None:
    text = encode(msg)
    assert " " not in text
    assert parse(text) == msg
    assert parse(text.encode()) == msg
    assert len(text.encode()) <= MAX_MESSAGE_BYTES


def test_wire_example_from_docs() -> None:
    msg = parse('{"v":1,"t":"key","seq":7,"ts":1234.5,"code":"Space","down":true}')
    assert msg == KeyEvent(seq=7, ts=1234.5, code="Space", down=True)
    assert json.loads(encode(msg)) == {
        "v": 1, "t": "key", "seq": 7, "ts": 1234.5, "code": "Space", "down": True,
    }


def test_unknown_fields_are_ignored() -> None:
    msg = parse('{"v":1,"t":"key","seq":7,"ts":1,"code":"KeyA","down":false,"player":1,"x":{}}')
    assert msg == KeyEvent(seq=7, ts=1.0, code="KeyA", down=False)


def test_stats_null_is_absent_and_seq_is_ignored() -> None:
    assert parse('{"v":1,"t":"stats","ts":1,"fps":null,"seq":9}') == StatsReport(ts=1.0)


def test_channels() -> None:
    assert channel_for(MESSAGES[0]) == CHANNEL_EVENTS == "input-events"  # type: ignore[arg-type]
    assert channel_for(MESSAGES[2]) == CHANNEL_STATE == "input-state"  # type: ignore[arg-type]
    assert channel_for(MESSAGES[3]) == CHANNEL_STATE  # type: ignore[arg-type]


BAD = [
    ("oversized", b'{"v":1,"t":"key","pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'),
    ("oversized", "é" * 600),  # 600 characters, 1200 bytes
    ("not_json", b'{"v":1,'),
    ("not_json", b'\xff{"v":1}'),
    ("not_json", '{"v":1,"t":"key","seq":1,"ts":NaN,"code":"KeyW","down":true}'),
    ("not_json", '{"v":1,"t":"pointer","seq":1,"ts":1,"x":Infinity,"y":0,"dx":0,"dy":0}'),
    ("malformed", "[1,2]"),
    ("malformed", '{"t":"key"}'),
    ("malformed", '{"v":"1","t":"key"}'),
    ("malformed", '{"v":1,"t":3}'),
    ("malformed", '{"v":1,"t":"key","seq":1,"ts":1.0,"code":"KeyW","down":1}'),
    ("malformed", '{"v":1,"t":"key","seq":true,"ts":1.0,"code":"KeyW","down":true}'),
    ("malformed", '{"v":1,"t":"key","seq":1,"ts":1.0,"code":42,"down":true}'),
    ("malformed", '{"v":1,"t":"key","seq":1,"ts":1.0,"down":true}'),
    ("malformed", '{"v":1,"t":"pointer","seq":1,"ts":1,"x":true,"y":0,"dx":0,"dy":0,"buttons":0}'),
    ("malformed", '{"v":1,"t":"pad","seq":1,"ts":1,"index":0,"buttons":{},"axes":[]}'),
    ("unsupported_version", '{"v":2,"t":"key","seq":1,"ts":1.0,"code":"KeyW","down":true}'),
    ("unsupported_version", '{"v":0}'),
    ("unknown_type", '{"v":1,"t":"mouse","seq":1,"ts":1.0}'),
    ("out_of_range", '{"v":1,"t":"key","seq":0,"ts":1.0,"code":"KeyW","down":true}'),
    ("out_of_range", '{"v":1,"t":"key","seq":2147483648,"ts":1.0,"code":"KeyW","down":true}'),
    ("out_of_range", '{"v":1,"t":"key","seq":1,"ts":1e999,"code":"KeyW","down":true}'),
    ("out_of_range", '{"v":1,"t":"key","seq":1,"ts":-1,"code":"KeyW","down":true}'),
    ("out_of_range", '{"v":1,"t":"key","seq":1,"ts":1.0,"code":"Key W","down":true}'),
    ("out_of_range", '{"v":1,"t":"key","seq":1,"ts":1.0,"code":"","down":true}'),
    ("out_of_range", '{"v":1,"t":"pointer","seq":1,"ts":1,"x":2,"y":0,"dx":0,"dy":0,"buttons":0}'),
    ("out_of_range", '{"v":1,"t":"pointer","seq":1,"ts":1,"x":1,"y":0,"dx":2e4,"dy":0,'
     '"buttons":0}'),
    ("out_of_range", '{"v":1,"t":"pointer","seq":1,"ts":1,"x":1,"y":0,"dx":0,"dy":0,"buttons":32}'),
    ("out_of_range", '{"v":1,"t":"pad","seq":1,"ts":1,"index":4,"buttons":[],"axes":[]}'),
    ("out_of_range", '{"v":1,"t":"pad","seq":1,"ts":1,"index":0,"buttons":[2],"axes":[]}'),
    ("out_of_range", '{"v":1,"t":"pad","seq":1,"ts":1,"index":0,"buttons":[],'
     '"axes":[0,0,0,0,0,0,0,0,0]}'),
    ("out_of_range", '{"v":1,"t":"stats","ts":1,"fps":-1}'),
]


@pytest.mark.parametrize(("reason", "data"), BAD)
def test_rejects(reason: str, data: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(data)
    assert info.value.reason == reason
    assert info.value.reason in REJECT_REASONS


def test_every_reason_is_exercised() -> None:
    assert {reason for reason, _ in BAD} == set(REJECT_REASONS)


def test_error_names_field_problem_and_expectation() -> None:
    with pytest.raises(ProtocolError) as info:
        parse('{"v":1,"t":"key","seq":1,"ts":1.0,"code":42,"down":true}')
    assert str(info.value) == "field 'code': expected a string of 1-32 letters/digits, got 42"
    with pytest.raises(ProtocolError) as info:
        parse('{"v":1,"t":"pad","seq":1,"ts":1,"index":0,"buttons":[0,1.5],"axes":[]}')
    assert "buttons[1]" in str(info.value) and "0..1" in str(info.value)
    assert isinstance(info.value, ValueError)


# --- properties ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
unit = st.floats(0.0, 1.0)
seqs = st.integers(1, 2**31 - 1)
stamps = st.floats(0.0, 1e12)
codes = st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True)
messages = st.one_of(
    st.builds(KeyEvent, seq=seqs, ts=stamps, code=codes, down=st.booleans()),
    st.builds(
        PointerEvent, seq=seqs, ts=stamps, x=unit, y=unit, dx=st.floats(-1e4, 1e4),
        dy=st.floats(-1e4, 1e4), buttons=st.integers(0, 31),
    ),
    st.builds(
        PadEvent, seq=seqs, ts=stamps, index=st.integers(0, 3),
        buttons=st.lists(unit, max_size=32).map(tuple),
        axes=st.lists(st.floats(-1.0, 1.0), max_size=8).map(tuple),
    ),
    st.builds(
        StatsReport, ts=stamps, fps=st.none() | st.floats(0, 1e6),
        packets_lost=st.none() | st.integers(0, 2**40),
    ),
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_encode_parse_round_trip_property(msg: protocol.Message) -> None:
    text = encode(msg)
    assert len(text.encode()) <= MAX_MESSAGE_BYTES
    assert parse(text) == msg


def _check_parse(data: str | bytes) -> None:
    try:
        msg = parse(data)
    except ProtocolError as exc:
        assert exc.reason in REJECT_REASONS
        return
    assert isinstance(msg, (KeyEvent, PointerEvent, PadEvent, StatsReport))
    assert parse(encode(msg)) == msg
    for value in vars(msg).values():
        if isinstance(value, float):
            assert math.isfinite(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=1200), st.binary(max_size=1200)))
def test_parse_arbitrary_input_property(data: str | bytes) -> None:
    _check_parse(data)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"v": st.just(1) | json_values, "t": st.sampled_from(["key", "pointer", "pad", "stats"])},
        optional={
            name: json_values | finite | st.integers(-5, 40) | unit
            for name in ("seq", "ts", "code", "down", "x", "y", "dx", "dy", "buttons", "index",
                         "axes", "fps", "freezes")
        },
    )
)
def test_parse_near_valid_objects_property(obj: dict[str, object]) -> None:
    _check_parse(json.dumps(obj))
