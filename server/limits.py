"""Per-viewer and per-session limits: the input rate limiter and the timeouts.

:class:`TokenBucket` is sans-I/O: it takes ``now`` as an argument and reads no
clock, so tests drive it with a fake one. :class:`Limits` gathers the
server's knobs in one place (``ServerConfig.limits``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)


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
    ice_timeout: float = 20.0
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

    def __post_init__(self) -> None:
        if self.max_viewers < 1:
            raise ValueError(f"max_viewers: expected an integer >= 1, got {self.max_viewers!r}")
        for name in ("input_rate", "input_burst"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a number > 0, got {value!r}")
        for name in ("ice_timeout", "liveness_timeout", "idle_timeout", "body_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected seconds >= 0 (0: off), got {value!r}")


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
