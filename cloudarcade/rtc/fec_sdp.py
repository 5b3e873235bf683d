"""Negotiating cloudarcade's FEC in SDP: only a client that asks for it is sent parity.

A client that can use parity (the Python client) puts
``a=x-cloudarcade-fec:1`` in its offer's video section; a server that will
send it answers ``a=x-cloudarcade-fec:1 pt=PT ssrc=SSRC``, naming the payload
type (one no section of either description uses) and the SSRC its parity
packets will carry. Parity packets have their own SSRC and sequence numbers,
so SRTP's per-SSRC replay protection and the media's sequence numbers are
untouched. Chromium never offers the attribute and never gets a packet it does
not understand. Bad values are a :class:`FecSdpError` naming what was wrong
and what was expected.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

ATTRIBUTE = "x-cloudarcade-fec"
VERSION = 1
# Dynamic payload types (RFC 3551); the highest free one is taken.
_DYNAMIC = range(96, 128)
_LINE = re.compile(rf"^a={ATTRIBUTE}:(.*?)\r?$", re.MULTILINE)
_PAYLOAD_TYPES = re.compile(r"^m=\S+ \S+ \S+((?: \d+)*)", re.MULTILINE)
_RTPMAP = re.compile(r"^a=(?:rtpmap|fmtp):(\d+) ", re.MULTILINE)
_SSRC = re.compile(r"^a=ssrc(?:-group:\S+)?:?((?: ?\d+)+)", re.MULTILINE)


class FecSdpError(ValueError):
    """An FEC attribute in an SDP is malformed; the message says what was expected."""


@dataclass(frozen=True)
class FecParams:
    """What the answer announces: the parity packets' payload type and SSRC."""

    payload_type: int
    ssrc: int

    def attribute(self) -> str:
        return f"a={ATTRIBUTE}:{VERSION} pt={self.payload_type} ssrc={self.ssrc}"


def _video_section(sdp: str) -> tuple[int, int] | None:
    """Start and end offsets of the first video media section."""
    start = sdp.find("\nm=video ")
    if start < 0:
        return None
    end = sdp.find("\nm=", start + 1)
    return start + 1, (len(sdp) if end < 0 else end + 1)


def _add(sdp: str, line: str) -> str:
    section = _video_section(sdp)
    if section is None:
        raise FecSdpError("no video section to add FEC to; expected an m=video line")
    end = section[1]
    newline = "\r\n" if "\r\n" in sdp else "\n"
    if not sdp[:end].endswith(("\n",)):
        return sdp[:end] + newline + line + newline + sdp[end:]
    return sdp[:end] + line + newline + sdp[end:]


def add_to_offer(sdp: str) -> str:
    """The client's offer asking for FEC in its video section."""
    return _add(sdp, f"a={ATTRIBUTE}:{VERSION}")


def offered(sdp: str) -> bool:
    """Whether the offer's video section asks for FEC; FecSdpError for a bad attribute."""
    section = _video_section(sdp)
    if section is None:
        return False
    values = _LINE.findall(sdp, *section)
    if not values:
        return False
    if len(values) > 1 or values[0].strip() != str(VERSION):
        raise FecSdpError(f"sdp: a={ATTRIBUTE}:{values[0][:40]!r}"
                          f"{' (repeated)' if len(values) > 1 else ''}; expected one "
                          f"a={ATTRIBUTE}:{VERSION} in the video section")
    return True


def choose(offer_sdp: str, answer_sdp: str, rng: random.Random | None = None) -> FecParams:
    """A payload type neither description uses and an SSRC neither announces."""
    used_pts: set[int] = set()
    used_ssrcs: set[int] = set()
    for sdp in (offer_sdp, answer_sdp):
        for match in _PAYLOAD_TYPES.finditer(sdp):
            used_pts.update(int(pt) for pt in match[1].split())
        used_pts.update(int(pt) for pt in _RTPMAP.findall(sdp))
        for match in _SSRC.finditer(sdp):
            used_ssrcs.update(int(ssrc) for ssrc in match[1].split())
    free = [pt for pt in _DYNAMIC if pt not in used_pts]
    if not free:
        raise FecSdpError("no free dynamic payload type (96..127) for FEC parity")
    rng = rng or random.SystemRandom()
    ssrc = rng.randrange(1, 2**32)
    while ssrc in used_ssrcs:
        ssrc = rng.randrange(1, 2**32)
    return FecParams(free[-1], ssrc)


def add_to_answer(sdp: str, params: FecParams) -> str:
    """The answer announcing the parity packets' payload type and SSRC."""
    return _add(sdp, params.attribute())


_ANSWER = re.compile(r"(\d+) pt=(\d+) ssrc=(\d+)")


def from_answer(sdp: str) -> FecParams | None:
    """The parity packets the answer announces, or None; FecSdpError if malformed."""
    section = _video_section(sdp)
    values = _LINE.findall(sdp, *section) if section is not None else []
    if not values:
        return None
    match = _ANSWER.fullmatch(values[0].strip())
    expected = f"expected a={ATTRIBUTE}:{VERSION} pt=96..127 ssrc=1..4294967295"
    if len(values) > 1 or match is None:
        raise FecSdpError(f"answer's a={ATTRIBUTE}:{values[0][:60]!r}; {expected}")
    version, pt, ssrc = (int(group) for group in match.groups())
    if version != VERSION or pt not in _DYNAMIC or not 0 < ssrc < 2**32:
        raise FecSdpError(f"answer's a={ATTRIBUTE}:{values[0][:60]!r}; {expected}")
    return FecParams(pt, ssrc)
