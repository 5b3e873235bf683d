"""RTP header extensions per transceiver, beyond the fixed list aiortc negotiates.

aiortc offers and answers exactly ``aiortc.codecs.HEADER_EXTENSIONS[kind]``
(mid and abs-send-time for video), a process-wide list. A media stack that
needs more (transport-wide sequence numbers for congestion control, the
playout-delay extension) negotiates them for its own transceivers only, so
the stock stack in the same process stays stock:

- offerer: :func:`add_to_offer` adds ``a=extmap`` lines to the offer SDP
  before ``setLocalDescription``; after ``setRemoteDescription(answer)``,
  :func:`negotiate` adds what the answer accepted to the transceiver;
- answerer: after ``setRemoteDescription(offer)`` and before
  ``createAnswer``, :func:`negotiate` adds what the offer carries, so the
  answer and the sender's parameters include it.

Either way the transceiver's ``_headerExtensions`` (checked in the contract)
then lists it, aiortc's receiver configures the transport's parser with it
(so known URIs such as transport-cc are parsed into ``packet.extensions``),
and :func:`negotiate` returns the ids a :class:`~cloudarcade.rtc.seam.TransportStep`
writes with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.sdp import MediaDescription, SessionDescription

from cloudarcade.rtc import contract

TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"

# One-byte header extensions (RFC 8285) have ids 1..14.
_MAX_ONE_BYTE_ID = 14
_EXTMAP = re.compile(r"a=extmap:(\d+)(?:/\w+)? (\S+)")


def add_to_offer(sdp: str, uris: Iterable[str], kind: str = "video") -> str:
    """``sdp`` with an ``a=extmap`` line for each of ``uris`` in every ``kind`` section.

    New ids follow the highest id the section already uses; a URI already
    offered keeps its id. Raises ``ValueError`` when ids run out.
    """
    wanted = list(uris)
    if not wanted:
        return sdp
    lines = sdp.splitlines()
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        if section and section[0].startswith(f"m={kind} "):
            used = {int(m[1]): m[2] for line in section if (m := _EXTMAP.match(line))}
            missing = [uri for uri in wanted if uri not in used.values()]
            next_id = max(used, default=0) + 1
            if next_id + len(missing) - 1 > _MAX_ONE_BYTE_ID:
                raise ValueError(f"no free one-byte header extension id for {missing} "
                                 f"(ids in use: {sorted(used)})")
            extra = [f"a=extmap:{next_id + i} {uri}" for i, uri in enumerate(missing)]
            # After the section's last extmap, or after its m= line.
            at = max((i for i, line in enumerate(section) if line.startswith("a=extmap:")),
                     default=0) + 1
            section[at:at] = extra
        out.extend(section)
        section.clear()

    for line in lines:
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    return "\r\n".join(out) + "\r\n"


def negotiate(
    transceiver: RTCRtpTransceiver, remote_sdp: str, uris: Iterable[str]
) -> dict[str, int]:
    """Add those of ``uris`` the remote description carries to ``transceiver``.

    Call it after ``setRemoteDescription``. Returns every header extension
    negotiated for the transceiver, aiortc's own included, as URI → id.
    """
    contract.require(transceiver, contract.TRANSCEIVER_ATTRIBUTES)
    current: list[RTCRtpHeaderExtensionParameters] = transceiver._headerExtensions
    media = _section_for(transceiver, SessionDescription.parse(remote_sdp))
    remote = {ext.uri: ext for ext in media.rtp.headerExtensions} if media is not None else {}
    have = {ext.uri for ext in current}
    for uri in uris:
        if uri in remote and uri not in have:
            current.append(RTCRtpHeaderExtensionParameters(id=remote[uri].id, uri=uri))
            have.add(uri)
    return {ext.uri: ext.id for ext in current}


def _section_for(
    transceiver: RTCRtpTransceiver, description: SessionDescription
) -> MediaDescription | None:
    sections = [m for m in description.media if m.kind == transceiver.kind]
    for media in sections:
        if transceiver.mid is not None and media.rtp.muxId == transceiver.mid:
            return media
    return sections[0] if sections else None
