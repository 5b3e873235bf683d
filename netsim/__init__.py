"""cloudarcade.netsim: 5G-like network impairment in user space.

Sans-I/O link stages (delay, loss, rate/trace with a queue, outages) composed
into one chain per direction, UDP relays that drive them on loopback in a
process of their own (``RelayProcess``), named profiles in ``profiles.toml``,
and SDP helpers that put a relay between WebRTC peers. See docs/netsim.md.
"""

from .delay import create_delay
from .link import create_link
from .loss import create_loss
from .packet import Drop, Packet
from .process import RelayProcess, RelayProcessError, RemoteRelay, open_relay
from .profile import Profile, ProfileError, get_profile, load_profiles
from .queue import create_queue
from .sdp import candidate_addresses, rewrite_sdp_candidates
from .stage import Chain, Stage
from .stats import DirectionStats, RelayStats

__all__ = [
    "Chain",
    "DirectionStats",
    "Drop",
    "Packet",
    "Profile",
    "ProfileError",
    "RelayProcess",
    "RelayProcessError",
    "RelayStats",
    "RemoteRelay",
    "Stage",
    "candidate_addresses",
    "create_delay",
    "create_link",
    "create_loss",
    "create_queue",
    "get_profile",
    "load_profiles",
    "open_relay",
    "rewrite_sdp_candidates",
]
