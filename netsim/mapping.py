"""The relay's NAT table: client address -> mapping, with idle expiry, a cap
and an optional list of the only sources allowed in (sans-I/O).

Each mapping holds an upstream socket (one descriptor), so without expiry and
a cap any sender could exhaust the relay's descriptors one source port at a
time. Time is an argument: tests drive the table with a fake clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

Address = tuple[str, int]
T = TypeVar("T")

#: Defaults: a NAT-like idle timeout, and a cap far above one session's needs
#: (a WebRTC client uses one or two source addresses).
IDLE_TIMEOUT = 30.0
MAX_MAPPINGS = 1024

#: Why a source was refused; also the relay's drop reasons for them.
REFUSED_SOURCE = "source"  # not one of the allowed addresses
REFUSED_FULL = "mappings"  # the table is at its cap


class Mappings(Generic[T]):
    """Mappings ordered by last use, so the idlest is always first.

    ``allowed`` (None: anyone) restricts who may open a mapping, as a viewer's
    relay accepts only its own client's addresses.
    """

    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        cap: int = MAX_MAPPINGS,
        allowed: Iterable[Address] | None = None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0 s, got {idle_timeout!r}")
        if cap < 1:
            raise ValueError(f"mapping cap must be >= 1, got {cap!r}")
        self.idle_timeout = idle_timeout
        self.cap = cap
        self.allowed = frozenset(allowed) if allowed is not None else None
        self._entries: OrderedDict[Address, tuple[T, float]] = OrderedDict()
        self.opened = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, client: object) -> bool:
        return client in self._entries

    def values(self) -> list[T]:
        return [value for value, _ in self._entries.values()]

    def get(self, client: Address, now: float) -> T | None:
        """The mapping of ``client``, refreshed as used at ``now``; None if absent."""
        entry = self._entries.get(client)
        if entry is None:
            return None
        self._entries[client] = (entry[0], now)
        self._entries.move_to_end(client)
        return entry[0]

    def peek(self, client: Address) -> T | None:
        """The mapping of ``client`` without refreshing it."""
        entry = self._entries.get(client)
        return None if entry is None else entry[0]

    def refusal(self, client: Address) -> str | None:
        """Why a new mapping for ``client`` may not be opened; None if it may."""
        if self.allowed is not None and client not in self.allowed:
            return REFUSED_SOURCE
        if len(self._entries) >= self.cap:
            return REFUSED_FULL
        return None

    def add(self, client: Address, value: T, now: float) -> None:
        """Record a new mapping (check ``refusal`` first)."""
        if client in self._entries:
            raise ValueError(f"{client[0]}:{client[1]} is mapped already")
        self._entries[client] = (value, now)
        self.opened += 1

    def expire(self, now: float) -> list[tuple[Address, T]]:
        """Remove and return the mappings idle for ``idle_timeout`` or longer."""
        gone: list[tuple[Address, T]] = []
        while self._entries:
            client, (value, used) = next(iter(self._entries.items()))
            if now - used < self.idle_timeout:
                break
            del self._entries[client]
            gone.append((client, value))
        self.expired += len(gone)
        return gone

    def next_expiry(self) -> float | None:
        """When the idlest mapping expires, or None when there are none."""
        if not self._entries:
            return None
        _, used = next(iter(self._entries.values()))
        return used + self.idle_timeout

    def clear(self) -> list[T]:
        """Remove every mapping; returns their values (to close)."""
        values = self.values()
        self._entries.clear()
        return values
