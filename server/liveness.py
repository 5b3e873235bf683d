"""Is a viewer's client still there? A clock-driven, sans-I/O verdict.

Two deadlines: the connection must come up within ``ice_timeout`` of the
answer, and once connected, some RTCP must arrive at least every
``silence_timeout`` (receiver reports come every 0.5-1.5 s; a client killed
without a goodbye sends nothing more, and aioice's consent check would take
about 30 s to notice). A timeout of 0 turns that check off. The viewer tells
:class:`Liveness` what happened and asks :meth:`Liveness.verdict` at
:meth:`Liveness.next_wakeup`.
"""

from __future__ import annotations


class Liveness:
    """Deadlines for one viewer; every method takes ``now`` (``time.monotonic()``)."""

    def __init__(self, *, ice_timeout: float, silence_timeout: float, start: float) -> None:
        self.ice_timeout = ice_timeout
        self.silence_timeout = silence_timeout
        self._connect_by = start + ice_timeout if ice_timeout > 0 else None
        self._ever_connected = False
        self._connected = False
        self.last_heard = start

    def connected(self, now: float) -> None:
        self._ever_connected = self._connected = True
        self.last_heard = now

    def disconnected(self) -> None:
        """The connection is not up (now); silence is not held against it meanwhile."""
        self._connected = False

    def heard(self, now: float) -> None:
        """Something (any RTCP) arrived from the client."""
        self.last_heard = now

    def verdict(self, now: float) -> str | None:
        """Why the client is gone (for the log), or None while it is alive."""
        if not self._ever_connected:
            if self._connect_by is not None and now >= self._connect_by:
                return f"not connected after {self.ice_timeout:.1f} s"
            return None
        if self._connected and self.silence_timeout > 0:
            silent = now - self.last_heard
            if silent > self.silence_timeout:
                return f"no RTCP from the client for {silent:.1f} s"
        return None

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`verdict` may change next, or None if it never will by time alone."""
        if not self._ever_connected:
            # Connecting ends the ICE deadline; the viewer wakes us then.
            return self._connect_by
        if self.silence_timeout <= 0:
            return None
        if not self._connected:
            return now + min(1.0, self.silence_timeout / 4)
        # verdict() needs strictly more than the timeout.
        return self.last_heard + self.silence_timeout + 1e-3
