"""When to send FEC parity, and how many columns (sans-I/O).

Reads the transport-cc results the congestion controller reads (every
packet, media and parity, lost or received, in transport-wide order) and
keeps two figures, both decaying with a time constant of ``window`` seconds:
the loss fraction and the mean length of a loss burst. FEC turns on once the
loss reaches ``on_loss`` (0.2 %: a lossless profile such as ideal or
steady-10m never gets there and pays nothing) and off again below
``off_loss``; with ``always`` (``--fec on``) it is on from the start. The
column count ``m`` is the smallest that leaves a burst longer than ``m``
(which interleaved XOR cannot rebuild) at most ``residual``
of the time, taking burst lengths as geometric with the measured mean (as
Gilbert-Elliott loss makes them): ``(1 - 1/mean) ** m <= residual``, capped
at ``max_columns``; until ``MIN_BURSTS`` bursts are seen, the cap. On
5g-congested (mean burst 3.3) that is 5 columns. A frame gets at most half as
many parity packets as it has media packets (:data:`MAX_PARITY_RATIO`): at
8 Mbit/s and 720p60 a frame is 10-14 packets, and without that cap the parity
of small frames took half the target and the ladder stepped down to 540p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .history import PacketResult

ON_LOSS = 0.002
OFF_LOSS = 0.001
WINDOW_S = 10.0
RESIDUAL = 0.2
MAX_COLUMNS = 6
MIN_PACKETS = 50.0  # the loss is not judged on fewer (decayed) packets
MIN_BURSTS = 3.0  # the burst length is not judged on fewer (decayed) bursts
# Parity packets per media packet of a frame, at most (FecEncoder.max_ratio).
MAX_PARITY_RATIO = 0.5


class FecPolicy:
    """Loss and burst length from transport-cc results; ``columns()`` says what to send."""

    def __init__(
        self,
        *,
        on_loss: float = ON_LOSS,
        off_loss: float = OFF_LOSS,
        window: float = WINDOW_S,
        residual: float = RESIDUAL,
        max_columns: int = MAX_COLUMNS,
        always: bool = False,
    ) -> None:
        if not 0 <= off_loss <= on_loss <= 1:
            raise ValueError(f"FEC loss thresholds on {on_loss} / off {off_loss}: "
                             "expected 0 <= off <= on <= 1")
        if not 0 < residual < 1:
            raise ValueError(f"FEC residual {residual}: expected 0 < residual < 1")
        if max_columns < 1:
            raise ValueError(f"FEC max columns {max_columns}: expected >= 1")
        if window <= 0:
            raise ValueError(f"FEC window {window} s: expected > 0")
        self.on_loss = on_loss
        self.off_loss = off_loss
        self.window = window
        self.residual = residual
        self.max_columns = max_columns
        # On whatever the loss (``--fec on``): only the column count follows it.
        self.always = always
        self.active = always
        self._lost = 0.0
        self._total = 0.0
        self._bursts = 0.0
        self._burst_packets = 0.0
        self._run = 0  # the loss run in progress
        self._highest: int | None = None
        self._updated: float | None = None

    @property
    def loss(self) -> float:
        """The decayed loss fraction (0 before any result)."""
        return self._lost / self._total if self._total else 0.0

    @property
    def mean_burst(self) -> float:
        """The decayed mean loss burst length in packets (1 before any burst)."""
        return self._burst_packets / self._bursts if self._bursts else 1.0

    def on_results(self, results: Sequence[PacketResult], now: float) -> None:
        """One feedback's results, in transport-wide sequence order."""
        self._decay(now)
        for result in results:
            if self._highest is not None and result.seq <= self._highest:
                continue  # reported before (a loss reported again, say)
            if self._highest is not None and result.seq > self._highest + 1:
                self._end_run()  # not reported: the run is not known to go on
            self._highest = result.seq
            self._total += 1
            if result.arrival is None:
                self._lost += 1
                self._run += 1
            else:
                self._end_run()
        if self._total >= MIN_PACKETS:
            if not self.active and self.loss >= self.on_loss:
                self.active = True
            elif self.active and self.loss < self.off_loss and not self.always:
                self.active = False

    def columns(self) -> int:
        """Parity packets per frame: 0 while the loss is low."""
        if not self.active:
            return 0
        if self._bursts < MIN_BURSTS:
            return self.max_columns  # the burst length is not known yet: assume long
        mean = self.mean_burst
        if mean <= 1.0:
            return 1
        # P(burst > m) = (1 - 1/mean) ** m for geometric burst lengths.
        m = math.ceil(math.log(self.residual) / math.log(1 - 1 / mean) - 1e-9)
        return max(1, min(m, self.max_columns))

    def _end_run(self) -> None:
        if self._run:
            self._bursts += 1
            self._burst_packets += self._run
            self._run = 0

    def _decay(self, now: float) -> None:
        if self._updated is not None and now > self._updated:
            keep = math.exp(-(now - self._updated) / self.window)
            self._lost *= keep
            self._total *= keep
            self._bursts *= keep
            self._burst_packets *= keep
        self._updated = now if self._updated is None else max(self._updated, now)
