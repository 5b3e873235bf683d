"""A viewer's figures into the session's metrics: RTP/RTCP stats polled, client reports.

:class:`ViewerStats` reads the sender's ``getStats()`` (RTP counters, RTCP
round-trip time and loss) and the netsim relay's counters every
``interval`` seconds while the viewer is connected, and turns the running
totals a client reports (freezes) into increments.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiortc import RTCRtpSender

from cloudarcade import protocol
from cloudarcade.metrics import NetsimMetrics, SessionMetrics
from cloudarcade.server.relaying import ViewerRelay

# How often a viewer's RTP/RTCP figures are read into the metrics.
STATS_INTERVAL = 2.0


class ViewerStats:
    """One viewer's metrics feed; :meth:`run` is the polling task."""

    def __init__(
        self,
        metrics: SessionMetrics,
        *,
        netsim: NetsimMetrics | None = None,
        interval: float = STATS_INTERVAL,
    ) -> None:
        self.metrics = metrics
        self.netsim = netsim
        self.interval = interval
        self._last_rtp = (0, 0)
        self._client_freezes = 0

    async def run(self, sender: RTCRtpSender, relay: ViewerRelay | None) -> None:
        """Poll until cancelled."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.interval)
                if relay is not None:
                    await relay.report(self.netsim)
                await self.poll(sender)

    async def poll(self, sender: RTCRtpSender) -> None:
        report = await sender.getStats()
        for stats in report.values():
            if stats.type == "outbound-rtp":
                packets, nbytes = stats.packetsSent, stats.bytesSent
                last_packets, last_bytes = self._last_rtp
                self.metrics.rtp_sent(packets - last_packets, nbytes - last_bytes)
                self._last_rtp = (packets, nbytes)
            elif stats.type == "remote-inbound-rtp":
                loss = stats.fractionLost / 256 if stats.fractionLost is not None else None
                self.metrics.rtcp(stats.roundTripTime, loss)

    def client_report(self, report: protocol.StatsReport) -> None:
        """A client's stats message (its totals) into the metrics (increments)."""
        new_freezes = 0
        if report.freezes is not None:
            new_freezes = max(report.freezes - self._client_freezes, 0)
            self._client_freezes = report.freezes
        self.metrics.client_report(
            decode_s=() if report.decode_ms is None else (report.decode_ms / 1000,),
            jitter_buffer_delay_s=(
                () if report.jitter_buffer_ms is None else (report.jitter_buffer_ms / 1000,)
            ),
            input_to_photon_s=(
                () if report.input_to_photon_ms is None else (report.input_to_photon_ms / 1000,)
            ),
            freezes=new_freezes,
            fps=report.fps,
        )
