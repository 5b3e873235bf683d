"""Per-viewer and per-session limits: the input rate limiter and the timeouts.

:class:`TokenBucket` is sans-I/O: it takes ``now`` as an argument and reads no
clock, so tests drive it with a fake one. :class:`Limits` gathers the
server's knobs in one place (``ServerConfig.limits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """How much a client may ask of the server, and how long it may be silent.

    Times are seconds; 0 turns a timeout off.
    """

    # Input messages per second a viewer may send, sustained, and the burst
    # above that (a gamepad at 120 Hz plus key events fits well inside).
    input_rate: float = 240.0
    input_burst: float = 480.0
    # A viewer whose peer connection is not "connected" this long after its
    # answer was sent (the client went away mid-handshake) is closed: "timeout".
    # ICE and DTLS take well under a second on a LAN and a few over the
    # Internet; a session waiting for its first viewer holds a session slot.
    ice_timeout: float = 10.0
    # A connected viewer from which no RTCP arrives for this long (a client
    # killed without a goodbye) is closed: "timeout". aioice's own consent
    # check notices only after ~30 s.
    liveness_timeout: float = 10.0
    # A session with no player input for this long closes: "timeout".
    idle_timeout: float = 0.0
    # Viewers (players and spectators) one session serves at most.
    max_viewers: int = 8
    # An offer's body must arrive within this many seconds of its headers.
    body_timeout: float = 10.0
    # Offers being answered at once (checked, then a peer connection and ICE
    # gathering); more → 503. Answering one takes tens of milliseconds.
    max_pending_offers: int = 4
    # New sessions whose first viewer has not connected yet; they count towards
    # max_sessions as well. More → 503, so that offers nobody completes cannot
    # take every session slot.
    max_connecting: int = 4
    # HTTP connections at once: from one source address, and in all.
    max_connections_per_address: int = 32
    max_connections: int = 512
    # A new connection must send its request's headers within this many seconds.
    header_timeout: float = 10.0
    # An idle keep-alive connection is closed after this many seconds.
    keepalive_timeout: float = 15.0

    def __post_init__(self) -> None:
        for name in ("max_viewers", "max_pending_offers", "max_connecting",
                     "max_connections_per_address", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("input_rate", "input_burst"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")
        for name in ("ice_timeout", "liveness_timeout", "idle_timeout", "body_timeout",
                     "header_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected seconds >= 0 (0: off), got {value!r}")


class PendingOffers:
    """How many offers are being answered now (between their checks and their answer)."""

    def __init__(self) -> None:
        self.count = 0


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    It starts full. :meth:`take` spends one token at ``now`` if there is one.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket: expected rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (refilled, capped at ``burst``)."""
        # A clock that steps back refills nothing rather than going negative.
        elapsed = max(now - self._last, 0.0)
        return min(self.burst, self._tokens + elapsed * self.rate)

    def take(self, now: float) -> bool:
        """Spend a token at ``now``; False (and nothing spent) when the bucket is empty."""
        self._tokens = self.tokens(now)
        self._last = max(now, self._last)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
