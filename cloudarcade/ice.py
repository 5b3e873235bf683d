"""Keep ICE on the bind address: host candidates only, no STUN.

aioice gathers host candidates from every interface except loopback, and
aiortc's default configuration names a public STUN server. A testbed must not
send a packet off the machine by default, so we pass ``iceServers=[]`` and
make aioice offer exactly the bind address.
"""

from __future__ import annotations

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

from cloudarcade.rtc import contract

_bound: str | None = None


def restrict_host_candidates(address: str) -> None:
    """Make every ICE agent in this process offer only ``address``.

    aioice reads its interface list through the module-level
    ``get_host_addresses``; replacing it is the one hook aioice 0.13 has.
    One process serves one bind address, so a second, different call fails.
    """
    global _bound
    contract.check()
    if _bound is not None and _bound != address:
        raise RuntimeError(f"ICE is already bound to {_bound}, cannot rebind to {address}")
    _bound = address

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [address]

    aioice.ice.get_host_addresses = host_addresses


def create_peer_connection(bind_address: str = "127.0.0.1") -> RTCPeerConnection:
    """A peer connection with no STUN/TURN servers, gathering on ``bind_address``."""
    restrict_host_candidates(bind_address)
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))
