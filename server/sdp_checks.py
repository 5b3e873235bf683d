"""Checks on an offer's SDP, made before anything is allocated for it.

An offer the server cannot serve must cost a parse, not a game, an encoder
and a peer connection: :func:`check_offer_sdp` looks at everything the offer
says that could make it fail later (its size in media sections, its syntax,
the video section, the codec, ICE credentials, RTCP mux, host candidates for a
network profile) and raises :class:`OfferError` naming the field ``sdp`` and
what was expected. Pure functions: no I/O, no aiortc objects beyond its parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aiortc import sdp as aiortc_sdp

from cloudarcade.netsim import candidate_addresses
from cloudarcade.rtc import fec_sdp
from cloudarcade.text import short

# A client needs two media sections (video, data channels), three with audio.
# Each further one costs aiortc a transceiver and an ICE check list; 500 of them
# took about a second each to answer.
MAX_MEDIA_SECTIONS: Final = 8

# "x=value": a one-letter type, then "=" (RFC 8866, section 5).
_LINE: Final = re.compile(r"[a-z]=.*")
# "m=<media> <port>[/<number>] <proto> <fmt> ..."
_MEDIA_LINE: Final = re.compile(r"m=\w+ \d+(?:/\d+)? \S+(?: \S+)+")
# The directions in which the client receives what the server sends.
_RECEIVING: Final = ("recvonly", "sendrecv")


class OfferError(ValueError):
    """The offer cannot be answered; the message says why and what was expected."""


@dataclass(frozen=True)
class CheckedOffer:
    """What the checks learned from an acceptable offer."""

    media_sections: int
    video_codecs: frozenset[str]


def _check_lines(sdp: str) -> int:
    """Count the media sections; raise on the first line that is not SDP."""
    sections = 0
    for number, line in enumerate(sdp.splitlines(), 1):
        if not line:
            continue
        if not _LINE.fullmatch(line):
            raise OfferError(f"sdp: line {number} is not 'x=value' SDP: {short(line)}")
        if line.startswith("m="):
            sections += 1
            if sections > MAX_MEDIA_SECTIONS:
                raise OfferError(f"sdp: more than {MAX_MEDIA_SECTIONS} media sections ('m=' "
                                 "lines); expected video and data channels, maybe audio")
            if not _MEDIA_LINE.fullmatch(line):
                raise OfferError(f"sdp: line {number} is not 'm=<media> <port> <proto> "
                                 f"<formats>': {short(line)}")
    return sections


def parse_offer_sdp(sdp: str) -> aiortc_sdp.SessionDescription:
    """The offer parsed by aiortc's own parser (the one ``setRemoteDescription`` uses)."""
    try:
        return aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises ValueError, AssertionError, KeyError, ...
        reason = str(exc) or "a line aiortc cannot parse"
        raise OfferError(f"sdp: not a valid offer ({type(exc).__name__}: {reason})") from None


def check_offer_sdp(sdp: str, rtp_codec: str, *, need_host_candidate: bool) -> CheckedOffer:
    """Check that an offer can be answered with ``rtp_codec`` video; OfferError if not.

    ``need_host_candidate``: the session puts a netsim relay on the media path,
    which needs the client's host candidates in the offer.
    """
    if not sdp.startswith("v=0"):
        raise OfferError("sdp: expected an SDP string starting with 'v=0'")
    sections = _check_lines(sdp)
    description = parse_offer_sdp(sdp)
    video = next((m for m in description.media if m.kind == "video"), None)
    if video is None:
        raise OfferError("sdp: offer has no video section; expected a recvonly video transceiver")
    try:
        fec_sdp.offered(sdp)
    except fec_sdp.FecSdpError as exc:
        raise OfferError(str(exc)) from None
    direction = video.direction or "sendrecv"  # the default when there is no attribute
    if direction not in _RECEIVING:
        raise OfferError(f"sdp: the video section is {direction}; expected recvonly "
                         "(the client receives the game's video)")
    offered = frozenset(c.mimeType.split("/", 1)[-1].upper() for c in video.rtp.codecs)
    if rtp_codec.upper() not in offered:
        raise OfferError(
            f"sdp: offer has no {rtp_codec} video codec (offered: "
            f"{', '.join(sorted(offered)) or 'none'}); choose a codec the client supports"
        )
    for index, media in enumerate(description.media):
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(f"sdp: media section {index} ({media.kind}) has no ICE credentials; "
                             "expected a=ice-ufrag and a=ice-pwd")
        if not media.dtls or not media.dtls.fingerprints:
            raise OfferError(f"sdp: media section {index} ({media.kind}) has no DTLS "
                             "parameters; expected a=fingerprint and a=setup")
        if media.kind in ("audio", "video") and not media.rtcp_mux:
            raise OfferError(f"sdp: media section {index} ({media.kind}) does not multiplex "
                             "RTCP; expected a=rtcp-mux")
    if need_host_candidate and not candidate_addresses(sdp):
        raise OfferError("sdp: the offer has no host candidate to put the network profile on; "
                         "expected a=candidate lines (gather before offering)")
    return CheckedOffer(media_sections=sections, video_codecs=offered)
