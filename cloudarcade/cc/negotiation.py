"""Transport-cc in the answer SDP: the RTCP feedback type Chromium waits for.

The header extension is negotiated per transceiver by
:mod:`cloudarcade.rtc.extensions`. Chromium sends transport-cc feedback only
for codecs whose answer also carries ``a=rtcp-fb:PT transport-cc``, and
aiortc's answer keeps only the feedback types aiortc knows (nack, pli,
goog-remb). :func:`add_transport_cc_feedback` puts the line back for every
payload type the offer asked it for.
"""

from __future__ import annotations

import re

_FEEDBACK = re.compile(r"^a=rtcp-fb:(\d+) transport-cc\r?$", re.MULTILINE)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ", re.MULTILINE)


def add_transport_cc_feedback(answer_sdp: str, offer_sdp: str) -> str:
    """``answer_sdp`` with ``a=rtcp-fb:PT transport-cc`` where the offer had it for PT."""
    offered = set(_FEEDBACK.findall(offer_sdp))
    if not offered:
        return answer_sdp
    out: list[str] = []
    for line in answer_sdp.split("\r\n"):
        out.append(line)
        match = _RTPMAP.match(line)
        if match and match[1] in offered and f"a=rtcp-fb:{match[1]} transport-cc" not in answer_sdp:
            out.append(f"a=rtcp-fb:{match[1]} transport-cc")
    return "\r\n".join(out)
