"""ICE candidate rewriting for putting the relay between WebRTC peers."""

from __future__ import annotations

from cloudarcade.netsim.sdp import candidate_addresses, rewrite_sdp_candidates

SDP = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=video 40001 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host",
        "a=candidate:2 1 tcp 1671430143 127.0.0.1 40001 typ host tcptype passive",
        "a=candidate:3 1 UDP 1694498815 127.0.0.1 40002 typ host",
        "a=candidate:4 1 udp 1694498815 10.1.1.1 5000 typ srflx raddr 127.0.0.1 rport 40001",
        "m=application 40001 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 127.0.0.1",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host",
        "",
    ]
)


def test_candidate_addresses_lists_udp_host_candidates_once() -> None:
    assert candidate_addresses(SDP) == [("127.0.0.1", 40001), ("127.0.0.1", 40002)]


def test_rewrite_replaces_candidates_and_default_address() -> None:
    out = rewrite_sdp_candidates(SDP, {("127.0.0.1", 40001): ("127.0.0.1", 50000)})
    lines = out.split("\r\n")
    assert "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host" in lines
    assert lines.count("a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host") == 2
    assert "m=video 50000 UDP/TLS/RTP/SAVPF 96" in lines
    assert "m=application 50000 UDP/DTLS/SCTP webrtc-datachannel" in lines
    # tcp and srflx candidates, and unmapped ones, stay as they were.
    assert "a=candidate:2 1 tcp 1671430143 127.0.0.1 40001 typ host tcptype passive" in lines
    assert "a=candidate:3 1 UDP 1694498815 127.0.0.1 40002 typ host" in lines
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    assert candidate_addresses(out) == [("127.0.0.1", 50000), ("127.0.0.1", 40002)]


def test_rewrite_without_matches_is_identity() -> None:
    assert rewrite_sdp_candidates(SDP, {("127.0.0.1", 1): ("127.0.0.1", 2)}) == SDP
