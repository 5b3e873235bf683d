"""Session options and /offer bodies: unknown keys and profiles are errors that name them."""

from __future__ import annotations

import pytest

from cloudarcade.server.options import OptionError, SessionOptions, parse_offer
from cloudarcade.text import short

SDP = "v=0\r\n"


def test_unknown_option_keys_are_named() -> None:
    with pytest.raises(OptionError, match=r"unknown options 'bitrat', 'fsp'; known: game, "):
        SessionOptions().updated({"fsp": 30, "bitrat": "2M", "game": "pong"})
    with pytest.raises(OptionError, match=r"unknown option 'colour'"):
        parse_offer({"sdp": SDP, "type": "offer", "colour": "red"}, SessionOptions(), [])


def test_profile_is_an_option_checked_against_the_known_profiles() -> None:
    offer = parse_offer({"sdp": SDP, "type": "offer", "profile": "lte", "token": "t",
                         "role": "spectator", "fps": 30}, SessionOptions(), ["lte", "wired"])
    assert (offer.options.profile, offer.options.fps, offer.role) == ("lte", 30, "spectator")
    with pytest.raises(OptionError, match="unknown profile 'moon'; known profiles: lte, wired"):
        SessionOptions().updated({"profile": "moon"}, profiles=["lte", "wired"])
    # None keeps the default: no relay.
    assert SessionOptions().updated({"profile": None}).profile is None


def test_ladder_is_on_or_off() -> None:
    assert SessionOptions().ladder is True
    assert SessionOptions().updated({"ladder": "off"}).ladder is False
    assert SessionOptions().updated({"ladder": True}).ladder is True  # JSON true in an offer
    with pytest.raises(OptionError, match="ladder: expected on or off, got 'maybe'"):
        SessionOptions().updated({"ladder": "maybe"})


def test_short_quotes_and_cuts() -> None:
    assert short("abc") == "'abc'"
    assert short("x" * 100) == "'" + "x" * 56 + "..." and len(short("x" * 100)) == 60
