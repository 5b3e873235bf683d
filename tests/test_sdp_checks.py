"""The offer SDP checks (server/sdp_checks.py) on real aiortc offers and broken variants."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from cloudarcade.server.sdp_checks import MAX_MEDIA_SECTIONS, OfferError, check_offer_sdp

from .test_robust_offer import _offer_sdp


@pytest.fixture
async def offer() -> str:
    return await _offer_sdp()


def _lines(sdp: str) -> list[str]:
    return sdp.split("\r\n")


async def test_a_real_offer_passes(offer: str) -> None:
    checked = check_offer_sdp(offer, "H264", need_host_candidate=True)
    assert checked.media_sections == 2
    assert {"H264", "VP8"} <= checked.video_codecs
    assert check_offer_sdp(offer, "VP8", need_host_candidate=False).media_sections == 2


async def test_refusals_name_the_sdp_and_what_was_expected() -> None:
    audio_only = await _offer_sdp(video=False, audio=True)
    vp8_only = await _offer_sdp(codec="VP8")
    with pytest.raises(OfferError, match=r"^sdp: offer has no video section; expected a recvonly"):
        check_offer_sdp(audio_only, "H264", need_host_candidate=False)
    with pytest.raises(OfferError, match=r"^sdp: offer has no H264 video codec \(offered: VP8"):
        check_offer_sdp(vp8_only, "H264", need_host_candidate=False)


async def test_too_many_media_sections(offer: str) -> None:
    extra = "".join(f"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:x{i}\r\n" for i in range(500))
    with pytest.raises(OfferError, match=f"^sdp: more than {MAX_MEDIA_SECTIONS} media sections"):
        check_offer_sdp(offer + extra, "H264", need_host_candidate=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s + "hello world\r\n", r"^sdp: line \d+ is not 'x=value' SDP: 'hello world'"),
        (lambda s: re.sub(r"m=video [^\r]*", "m=video 9", s),
         r"^sdp: line \d+ is not 'm=<media> <port> <proto> <formats>': 'm=video"),
        (lambda s: s.replace("a=rtpmap:", "a=rtpmap:x", 1), r"^sdp: not a valid offer \(\w+: .+\)"),
        (lambda s: s.replace("a=recvonly", "a=sendonly"),
         r"^sdp: the video section is sendonly; expected recvonly"),
        (lambda s: "\r\n".join(x for x in _lines(s) if not x.startswith("a=ice-pwd")),
         r"^sdp: media section 0 \(video\) has no ICE credentials"),
        (lambda s: "\r\n".join(x for x in _lines(s) if not x.startswith("a=fingerprint")),
         r"^sdp: media section 0 \(video\) has no DTLS parameters"),
        (lambda s: "\r\n".join(x for x in _lines(s) if x != "a=rtcp-mux"),
         r"^sdp: media section 0 \(video\) does not multiplex RTCP"),
        (lambda s: "hello", r"^sdp: expected an SDP string starting with 'v=0'"),
    ],
)
async def test_broken_offers_are_refused_with_a_reason(
    offer: str, edit: Callable[[str], str], message: str
) -> None:
    with pytest.raises(OfferError, match=message):
        check_offer_sdp(edit(offer), "H264", need_host_candidate=False)


async def test_garbage_after_v0_gets_a_reason() -> None:
    for garbage in ("v=0\r\nm=video 9 x\r\n", "v=0\r\nm=\r\n", "v=0\r\na=\x00\r\nm=video 1 2 3"):
        with pytest.raises(OfferError) as info:
            check_offer_sdp(garbage, "H264", need_host_candidate=False)
        message = str(info.value)
        assert message.startswith("sdp: ") and len(message) > len("sdp: ") + 10, message


async def test_a_network_profile_needs_a_host_candidate(offer: str) -> None:
    stripped = "\r\n".join(x for x in _lines(offer) if not x.startswith("a=candidate"))
    check_offer_sdp(stripped, "H264", need_host_candidate=False)
    with pytest.raises(OfferError, match=r"^sdp: the offer has no host candidate"):
        check_offer_sdp(stripped, "H264", need_host_candidate=True)
