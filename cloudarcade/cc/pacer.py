"""A leaky-bucket pacer: packets out at ``factor`` × the target rate, with a small burst.

Sans-I/O, in virtual time: ``schedule(size, now)`` books a packet and returns
when it may leave; the sender waits until then (the seam holds aiortc's
sender loop, so packets queue in order behind it). ``backlog(now)`` is how far
the booked departures run ahead of ``now``: the time a new packet would wait.

The bucket holds at most ``burst`` seconds of the pacing rate, so a frame near
the mean size leaves at once (no added delay while the link keeps up) and
only a frame much bigger than the rate allows (a keyframe, a scene cut) is
spread out instead of flooding a small bottleneck queue. libwebrtc paces at
2.5 × and allows 40 ms bursts; a game at 60 fps wants a burst near one frame
interval.
"""

from __future__ import annotations

DEFAULT_FACTOR = 1.5
DEFAULT_BURST_S = 0.020


class Pacer:
    """Books departures at the pacing rate; never drops."""

    def __init__(
        self, rate: float, *, factor: float = DEFAULT_FACTOR, burst: float = DEFAULT_BURST_S
    ) -> None:
        if factor < 1:
            raise ValueError(f"pacing factor {factor}: expected >= 1")
        if burst <= 0:
            raise ValueError(f"pacing burst {burst} s: expected > 0")
        self.factor = factor
        self.burst = burst
        self.rate = rate
        # When the bucket would next be empty: departures are booked from here.
        self._virtual: float | None = None

    @property
    def rate(self) -> float:
        """The target rate (bits/s); packets leave at ``factor`` × this."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"pacing rate {value} bit/s: expected > 0")
        self._rate = value

    @property
    def pacing_rate(self) -> float:
        """Bytes per second."""
        return self._rate * self.factor / 8

    def schedule(self, size: int, now: float) -> float:
        """Book a packet of ``size`` bytes; returns the time it may leave (>= ``now``)."""
        floor = now - self.burst  # the bucket holds no more than the burst
        virtual = floor if self._virtual is None else max(self._virtual, floor)
        depart = max(virtual, now)
        self._virtual = virtual + size / self.pacing_rate
        return depart

    def backlog(self, now: float) -> float:
        """Seconds a packet booked now would wait (0 while the burst allowance lasts)."""
        if self._virtual is None:
            return 0.0
        return max(self._virtual - now, 0.0)

    def next_wakeup(self, now: float) -> float | None:
        """When the last booked packet leaves; None when nothing waits."""
        if self._virtual is None or self._virtual <= now:
            return None
        return self._virtual
