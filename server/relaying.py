"""A netsim relay on a viewer's media path (``serve --profile``).

Both SDPs are rewritten: the client sees the relay's listen port as our
candidate, and we see the relay's per-client upstream port as the client's,
so no ICE pair can bypass the relay. The relay accepts packets only from the
client addresses in the offer, like a NAT; other sources are dropped and
counted (``cloudarcade_netsim_drops_total{reason="source"}``). Uplink is
client -> server, downlink server -> client.

All the viewers of a server share one relay process (``netsim.RelayProcess``),
started with the first relay and ended with the last, so that no relay runs
in the server's interpreter beside its render and encode threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable

from aiortc import RTCSessionDescription

from cloudarcade.metrics import NetsimMetrics
from cloudarcade.netsim import (
    Profile,
    RelayProcess,
    RelayProcessError,
    RelayStats,
    RemoteRelay,
    candidate_addresses,
    rewrite_sdp_candidates,
)

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class _Shared:
    """The relay process of one event loop, counted by its users."""

    def __init__(self) -> None:
        self.process: RelayProcess | None = None
        self.users = 0
        self.lock = asyncio.Lock()
        #: Each relay in use: its process, and what to do if that process dies.
        self.on_lost: dict[int, tuple[RelayProcess, Callable[[], object]]] = {}

    def lost(self, process: RelayProcess) -> None:
        gone = {k: cb for k, (p, cb) in self.on_lost.items() if p is process}
        for key, callback in gone.items():
            del self.on_lost[key]
            callback()


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Shared] = (
    weakref.WeakKeyDictionary()
)


async def _acquire() -> tuple[_Shared, RelayProcess]:
    shared = _SHARED.setdefault(asyncio.get_running_loop(), _Shared())
    async with shared.lock:
        if shared.process is None or not shared.process.running:
            process = RelayProcess()
            process.on_exit = functools.partial(shared.lost, process)
            await process.start()
            # A dead predecessor's users release it on their own (below).
            shared.process, shared.users = process, 0
        shared.users += 1
        return shared, shared.process


async def _release(process: RelayProcess) -> None:
    shared = _SHARED.get(asyncio.get_running_loop())
    async with shared.lock if shared is not None else asyncio.Lock():
        if shared is None or shared.process is not process:
            await process.close()  # a process that was replaced after it died
            return
        shared.users -= 1
        if shared.users <= 0:
            shared.process = None
            shared.users = 0
            await process.close()


class ViewerRelay:
    """One viewer's relay: rewrites its SDPs and feeds the netsim metrics."""

    def __init__(self, process: RelayProcess, relay: RemoteRelay) -> None:
        self.process = process
        self.relay = relay
        self._shared: _Shared | None = None
        self._counts: dict[tuple[str, str], int] = {}
        self._closed = False

    @classmethod
    async def for_offer(
        cls,
        offer: RTCSessionDescription,
        profile: Profile,
        bind: str,
        error: Callable[[str], Exception],
        on_lost: Callable[[], object],
    ) -> tuple[ViewerRelay, RTCSessionDescription]:
        """A relay for the client of ``offer``, and the offer rewritten to use it.

        ``error(text)`` builds the exception for an offer that cannot be served;
        ``on_lost()`` is called if the relay process dies under the relay.
        """
        clients = candidate_addresses(offer.sdp)
        if not clients:
            raise error("the offer has no host candidate to put the network profile on")
        # Chromium advertises its interface address (192.0.2.2 P) but binds the socket to
        # any address: what it sends to the relay on ``bind`` comes from (bind, P), and
        # what the relay sends to (bind, P) reaches it.
        sources = {client: (bind, client[1]) if ":" not in client[0] else client
                   for client in clients}
        shared, process = await _acquire()
        try:
            # The forward address (our ICE port) is known only after gathering;
            # no packet reaches the relay before the client has our answer.
            relay = await process.open(profile, (bind, 0), listen=(bind, 0),
                                       allowed=list(dict.fromkeys(sources.values())))
            mapping = {client: await relay.upstream_address(sources[client]) for client in clients}
        except BaseException:
            await _release(process)
            raise
        sdp = rewrite_sdp_candidates(offer.sdp, mapping)
        viewer_relay = cls(process, relay)
        viewer_relay._shared = shared
        shared.on_lost[id(viewer_relay)] = (process, on_lost)
        return viewer_relay, RTCSessionDescription(sdp=sdp, type=offer.type)

    async def answer(self, sdp: str, error: Callable[[str], Exception]) -> str:
        """Our answer rewritten so that the client reaches us through the relay."""
        ours = candidate_addresses(sdp)
        if not ours:
            raise error("the answer has no host candidate to put the network profile on")
        await self.relay.set_forward(ours[0])
        return rewrite_sdp_candidates(sdp, {address: self.relay.address for address in ours})

    async def stats(self) -> RelayStats:
        return await self.relay.stats()

    async def report(self, netsim: NetsimMetrics | None) -> None:
        """Add what the relay counted since the last report to ``netsim``."""
        if netsim is None:
            return
        try:
            stats = await self.relay.stats()
        except RelayProcessError as exc:
            logger.warning("netsim relay %d: no stats (%s)", self.relay.id, exc)
            return
        for direction in ("uplink", "downlink"):
            d = getattr(stats, direction)
            if new := self._delta(direction, "packets", d.packets_in):
                netsim.packet(direction, new)
            for reason, total in d.drops.items():
                if new := self._delta(direction, reason, total):
                    netsim.dropped(direction, reason, new)
            netsim.queued(direction, d.queue_delay_p50_ms / 1000)

    def _delta(self, direction: str, key: str, total: int) -> int:
        """How much the relay's running count ``total`` grew since the last report."""
        new = total - self._counts.get((direction, key), 0)
        self._counts[(direction, key)] = total
        return max(new, 0)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._shared is not None:
            self._shared.on_lost.pop(id(self), None)
        try:
            await self.relay.close()
        finally:
            await _release(self.process)
