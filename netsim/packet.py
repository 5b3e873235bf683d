"""The unit that moves through a link chain, and the record of a dropped one."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Reasons the relay drops a packet; stats, event logs and metric labels key on
#: these strings. A stage drops for loss, queue or outage; the relay for a
#: failed send, a source that is not the viewer's own (``source``) or a full
#: NAT table (``mappings``): see ``netsim.mapping``; the kernel for a full
#: socket buffer (``overflow``, counted by ``SO_RXQ_OVFL``).
DROP_REASONS = ("loss", "queue", "outage", "send", "source", "mappings", "overflow")


@dataclass(slots=True)
class Packet:
    """One datagram inside the simulator.

    ``arrival`` is when it entered the chain; ``time`` is the model time at which
    it left the latest stage (stages update it), so a chain can hand a packet to
    the next stage at the instant it really left, even if the caller polls late.
    """

    data: bytes
    arrival: float
    seq: int = 0
    size: int = -1
    time: float = field(default=-1.0)
    #: Set by the bottleneck stage: seconds spent queued plus serialising.
    queue_delay: float = 0.0
    #: Opaque routing tag for the relay (the client address); stages ignore it.
    route: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)
        if self.time < 0:
            self.time = self.arrival


@dataclass(frozen=True, slots=True)
class Drop:
    """A packet a stage discarded, with the model time and why."""

    packet: Packet
    reason: str
    time: float
