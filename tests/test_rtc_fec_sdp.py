"""FEC negotiation in SDP, on real aiortc offers: the client asks, the server answers
with a payload type and SSRC nobody else uses, bad values are refused with what was expected."""

from __future__ import annotations

import random
import re

import pytest

from cloudarcade.rtc import fec_sdp
from cloudarcade.rtc.fec_sdp import FecParams, FecSdpError
from cloudarcade.server.sdp_checks import OfferError, check_offer_sdp

from .test_robust_offer import _offer_sdp


@pytest.fixture
async def offer() -> str:
    return await _offer_sdp()


def _video(sdp: str) -> str:
    return sdp[sdp.index("m=video"):]


async def test_the_client_asks_in_its_video_section_only(offer: str) -> None:
    assert not fec_sdp.offered(offer)
    asked = fec_sdp.add_to_offer(offer)
    assert fec_sdp.offered(asked)
    assert asked.count("a=x-cloudarcade-fec:1\r\n") == 1
    assert "a=x-cloudarcade-fec:1\r\n" in _video(asked).split("m=application")[0]
    assert check_offer_sdp(asked, "H264", need_host_candidate=False).media_sections == 2


@pytest.mark.parametrize("value", ["2", "1 extra", "one"])
async def test_a_bad_offer_attribute_is_refused_saying_what_was_expected(
    offer: str, value: str
) -> None:
    bad = fec_sdp.add_to_offer(offer).replace("a=x-cloudarcade-fec:1",
                                              f"a=x-cloudarcade-fec:{value}")
    with pytest.raises(OfferError, match=r"sdp: a=x-cloudarcade-fec:.*expected one "
                                         r"a=x-cloudarcade-fec:1 in the video section"):
        check_offer_sdp(bad, "H264", need_host_candidate=False)


async def test_the_answer_names_a_free_payload_type_and_ssrc(offer: str) -> None:
    used = {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) ", offer)}
    params = fec_sdp.choose(offer, offer, random.Random(3))
    assert params.payload_type not in used and 96 <= params.payload_type <= 127
    answer = fec_sdp.add_to_answer(offer, params)
    assert fec_sdp.from_answer(answer) == params
    assert fec_sdp.from_answer(offer) is None


def test_no_free_payload_type_is_an_error() -> None:
    sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF " + " ".join(map(str, range(96, 128))) + "\r\n"
    with pytest.raises(FecSdpError, match=r"no free dynamic payload type \(96..127\)"):
        fec_sdp.choose(sdp, sdp)


@pytest.mark.parametrize("value", ["1 pt=95 ssrc=5", "1 pt=120 ssrc=0", "2 pt=120 ssrc=5",
                                   "1 pt=120", "1 ssrc=5 pt=120"])
async def test_a_bad_answer_attribute_says_what_was_expected(offer: str, value: str) -> None:
    answer = fec_sdp.add_to_answer(offer, FecParams(120, 5)).replace(
        "a=x-cloudarcade-fec:1 pt=120 ssrc=5", f"a=x-cloudarcade-fec:{value}")
    with pytest.raises(FecSdpError, match=re.escape("expected a=x-cloudarcade-fec:1 pt=96..127 "
                                                    "ssrc=1..4294967295")):
        fec_sdp.from_answer(answer)
