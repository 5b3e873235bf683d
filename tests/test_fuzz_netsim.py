"""Property tests for the netsim profile and trace parsers.

Whatever a user's file holds, the parser returns a result or raises the
module's own error naming the file; never another exception.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudarcade.netsim.profile import _FIELDS, Profile, ProfileError, parse_profiles
from cloudarcade.netsim.trace import parse_trace

SOURCE = "fuzz.toml"

# Values TOML can hold (no null), nested a little.
_scalar = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.sampled_from([0, 1, 0.5, 10, 1e308, -1.0, math.inf, math.nan])
    | st.text(max_size=12)
    | st.sampled_from(["bernoulli", "gilbert-elliott", "droptail", "codel", "uniform", "pareto"])
)
_toml = st.recursive(
    _scalar,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["model", "p", "kind", "packets", "bytes", "start_ms",
                                       "duration_ms", "period_ms", "mean_interval_ms",
                                       "target_ms", "x"]) | st.text(max_size=6),
                      children, max_size=4),
    max_leaves=10,
)
_field_names = st.sampled_from([*_FIELDS, "bogus"])
_link = st.dictionaries(_field_names, _toml, max_size=4)


@st.composite
def profile_files(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=2,
                              unique=True)):
        if draw(st.integers(0, 9)) == 0:
            data[name] = draw(_toml)
            continue
        body: dict[str, Any] = draw(_link)
        body["description"] = draw(st.sampled_from(["a link", "", " "]) | _toml)
        body["source"] = draw(st.just("a paper") | _toml)
        if draw(st.booleans()):
            body["seed"] = draw(st.integers(-2, 2**70) | _toml)
        for direction in draw(st.lists(st.sampled_from(["uplink", "downlink"]), unique=True)):
            body[direction] = draw(_link | _toml)
        data[name] = body
    return data


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=profile_files())
def test_profile_parser_returns_profiles_or_names_the_file(data: dict[str, Any]) -> None:
    try:
        profiles = parse_profiles(data, SOURCE, base=None)
    except ProfileError as exc:
        assert str(exc).startswith(f"{SOURCE}: "), exc
        return
    assert set(profiles) == set(data)
    for profile in profiles.values():
        assert isinstance(profile, Profile)
        # What the parser accepts can be built.
        profile.build_chain("uplink")
        profile.build_chain("downlink")


_trace_lines = st.lists(
    st.integers(0, 10**6).map(str)
    | st.sampled_from(["", " 5 ", "-1", "1.5", "abc", "\t7", "1e3", "0x10"]),
    max_size=20,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(lines=_trace_lines, end=st.sampled_from(["\n", "", "\r\n"]))
def test_trace_parser_returns_a_trace_or_names_the_file(lines: list[str], end: str) -> None:
    text = "\n".join(lines) + end
    try:
        trace = parse_trace(text, "fuzz.trace")
    except ValueError as exc:
        assert str(exc).startswith("fuzz.trace:"), exc
        return
    assert trace.period_ms > 0
    assert list(trace.times_ms) == sorted(trace.times_ms)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=st.text(max_size=80))
def test_trace_parser_on_any_text_raises_only_value_error(text: str) -> None:
    try:
        trace = parse_trace(text, "fuzz.trace")
    except ValueError as exc:
        assert str(exc).startswith("fuzz.trace"), exc  # the error names the file
        return
    # Accepted text is a usable trace: delivery times in order, a positive period.
    assert trace.period_ms > 0
    assert list(trace.times_ms) == sorted(trace.times_ms)


def test_trace_parser_unicode_digit_names_the_file() -> None:
    # str.isdigit() accepts '²', which int() refuses: the error must still name the file.
    with pytest.raises(ValueError, match=r"^fuzz\.trace:1: "):
        parse_trace("²\n", "fuzz.trace")
