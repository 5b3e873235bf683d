"""Header extensions negotiated per transceiver, beyond aiortc's fixed list."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from cloudarcade.rtc.extensions import (
    ABS_SEND_TIME,
    MID,
    PLAYOUT_DELAY,
    TRANSPORT_CC,
    add_to_offer,
    negotiate,
)


async def test_offer_and_answer_carry_the_extra_extensions_only_where_asked() -> None:
    client, server, plain = RTCPeerConnection(), RTCPeerConnection(), RTCPeerConnection()
    try:
        ours = client.addTransceiver("video", direction="recvonly")
        offer = await client.createOffer()
        sdp = add_to_offer(offer.sdp, [TRANSPORT_CC, PLAYOUT_DELAY])
        await client.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        assert f"a=extmap:4 {TRANSPORT_CC}" in client.localDescription.sdp

        theirs = server.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await server.setRemoteDescription(client.localDescription)
        ids = negotiate(theirs, client.localDescription.sdp, [PLAYOUT_DELAY])
        assert ids == {MID: 1, ABS_SEND_TIME: 3, PLAYOUT_DELAY: 5}  # not transport-cc
        await server.setLocalDescription(await server.createAnswer())
        answer = server.localDescription.sdp
        assert f"a=extmap:5 {PLAYOUT_DELAY}" in answer and TRANSPORT_CC not in answer

        await client.setRemoteDescription(server.localDescription)
        assert negotiate(ours, answer, [TRANSPORT_CC, PLAYOUT_DELAY])[PLAYOUT_DELAY] == 5

        # A peer connection that asks for nothing extra stays stock.
        plain.addTransceiver("video", direction="recvonly")
        stock = (await plain.createOffer()).sdp
        assert PLAYOUT_DELAY not in stock and TRANSPORT_CC not in stock
    finally:
        for pc in (client, server, plain):
            await pc.close()


def test_ids_that_run_out_are_an_error() -> None:
    lines = ["v=0", "m=video 9 UDP/TLS/RTP/SAVPF 96"]
    lines += [f"a=extmap:{i} urn:x-test:{i}" for i in range(1, 14)]
    with pytest.raises(ValueError, match="no free one-byte header extension id"):
        add_to_offer("\r\n".join(lines), [TRANSPORT_CC, PLAYOUT_DELAY])
