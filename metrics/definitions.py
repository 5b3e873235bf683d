"""Every Prometheus metric of cloudarcade, in one place.

Names follow Prometheus practice: prefix ``cloudarcade_``, base units
(``_seconds``, ``_bytes``), ``_total`` on counters. Labels are bounded: game,
codec, profile, stage, phase, reason, direction. Never a session or frame id.

The metrics live in their own :class:`~prometheus_client.CollectorRegistry`
(:data:`REGISTRY`), not the process-wide default, so that tests and several
servers in one process do not collide. ``Metrics(CollectorRegistry())`` builds
a fresh, independent set; :data:`METRICS` is the default one.

The hot path does not touch these objects directly: it goes through
:class:`cloudarcade.metrics.session.SessionMetrics`, which resolves the labels
once per session.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from cloudarcade.netsim.packet import DROP_REASONS
from cloudarcade.protocol import DISCARD_REASONS, REJECT_REASONS

PREFIX: Final = "cloudarcade"

# Seconds, placed around multiples of a frame interval (16.7 ms at 60 fps,
# 33.3 ms at 30 fps), so that "one frame late" and "two frames late" fall into
# different buckets.
LATENCY_BUCKETS: Final = (
    0.001, 0.002, 0.004, 0.008, 0.0125, 0.0167, 0.025, 0.0333, 0.05, 0.0667,
    0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
)  # fmt: skip
# Frames per second reported by clients: the usual targets and a little below them.
FPS_BUCKETS: Final = (5.0, 10.0, 15.0, 20.0, 24.0, 28.0, 30.0, 45.0, 50.0, 55.0, 58.0, 60.0, 90.0,
                      120.0)  # fmt: skip
# Loss fraction from RTCP receiver reports (0 .. 1).
LOSS_BUCKETS: Final = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

# The bounded label values. Unknown values are refused (ValueError naming these).
SESSION_END_REASONS: Final = ("closed", "failed", "timeout", "shutdown", "rejected")
# Offers refused before any session exists, by HTTP status.
OFFER_REFUSAL_REASONS: Final = {
    400: "bad_request", 401: "unauthorized", 404: "unknown_share", 408: "timeout",
    413: "too_large", 503: "full",
}
# A 503 for load rather than capacity: too many offers being answered, or too
# many new sessions still connecting.
BUSY: Final = "busy"
# HTTP connections closed by the server's guard (server/listener.py): over the
# per-address or the total cap, or no complete request headers in time.
CONNECTION_REFUSAL_REASONS: Final = ("per_address", "total", "header_timeout")
DROP_PHASES: Final = ("render_skip", "encode_busy", "cc_skip", "send")
KEYFRAME_REASONS: Final = ("start", "pli", "fir", "interval", "rung")
# Rungs of the resolution/frame-rate ladder (server/ladder.py builds at most 4):
# 0 is the configured size and rate.
LADDER_RUNGS: Final = ("0", "1", "2", "3")
LADDER_DIRECTIONS: Final = ("down", "up")
RATE_LIMITED: Final = "rate_limited"
DIRECTIONS: Final = ("uplink", "downlink")
# Key event copies not applied (cloudarcade.protocol.KeyDedupe): duplicate, stale.
INPUT_DISCARD_REASONS: Final = DISCARD_REASONS
# The relay's own list: a reason it reports (e.g. "send", a failed sendto)
# must never be a label value the metrics refuse.
NETSIM_DROP_REASONS: Final = DROP_REASONS

SESSION_LABELS: Final = ("game", "codec", "profile")


def input_reject_reasons() -> tuple[str, ...]:
    """The ``reason`` values of ``cloudarcade_inputs_rejected_total``.

    The protocol's own reasons plus ``rate_limited`` (the server's limiter).
    """
    return (*REJECT_REASONS, RATE_LIMITED)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_labels() -> dict[str, str]:
    """The labels of ``cloudarcade_build_info``: versions of us and of the media stack."""
    return {
        "version": _version("cloudarcade"),
        "python": platform.python_version(),
        "aiortc": _version("aiortc"),
        "av": _version("av"),
    }


class Metrics:
    """All metric objects of cloudarcade, registered in ``registry``.

    Attribute names are the metric names without the ``cloudarcade_`` prefix
    and without ``_total`` (prometheus_client appends it to counters).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        s = SESSION_LABELS
        r = registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = s) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = s) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, labels, registry=r)

        def histogram(
            name: str,
            doc: str,
            labels: tuple[str, ...] = s,
            buckets: tuple[float, ...] = LATENCY_BUCKETS,
        ) -> Histogram:
            return Histogram(f"{PREFIX}_{name}", doc, labels, registry=r, buckets=buckets)

        # Sessions. started = active + sum(ended). An offer refused by the
        # checks never starts one (offers_refused); one that aiortc refuses
        # after the checks is started and then ended with reason "rejected".
        self.sessions_active = gauge("sessions_active", "Sessions streaming now.")
        self.sessions_started = counter("sessions_started", "Sessions begun (offers accepted).")
        self.sessions_ended = counter(
            "sessions_ended", "Sessions ended, by reason.", (*s, "reason")
        )
        self.offers_refused = counter(
            "offers_refused",
            "Offers refused before a session existed (bad request, token, server full), by reason.",
            ("reason",),
        )
        for reason in (*OFFER_REFUSAL_REASONS.values(), BUSY):
            self.offers_refused.labels(reason)  # every series exists from the start

        self.connections_open = Gauge(
            f"{PREFIX}_connections_open", "HTTP connections open on the public port.", registry=r
        )
        self.connections_refused = counter(
            "connections_refused",
            "HTTP connections refused or closed by the server's limits, by reason.",
            ("reason",),
        )
        for reason in CONNECTION_REFUSAL_REASONS:
            self.connections_refused.labels(reason)

        # Frames through the server pipeline.
        self.frames_rendered = counter("frames_rendered", "Frames rendered by the game loop.")
        self.frames_encoded = counter("frames_encoded", "Frames encoded.")
        self.frames_sent = counter("frames_sent", "Frames whose last RTP packet was sent.")
        self.frames_dropped = counter(
            "frames_dropped", "Frames dropped, by pipeline phase.", (*s, "phase")
        )
        self.session_cpu_seconds = counter(
            "session_cpu_seconds",
            "CPU seconds used by the sessions' own render and encode threads (time.thread_time);"
            " the event loop's shared work (RTP, SRTP, data channels) is not in it.",
        )
        self.render_seconds = histogram("render_seconds", "Time to render one frame.")
        self.convert_seconds = histogram(
            "convert_seconds", "Time to convert one rendered frame for the encoder."
        )
        self.encode_seconds = histogram("encode_seconds", "Time to encode one frame.")
        self.stage_seconds = histogram(
            "stage_seconds",
            "Time spent in each stage of the input-to-photon path (cloudarcade.stages).",
            (*s, "stage"),
        )

        # Encoder output and rate control.
        self.encoded_bytes = counter("encoded_bytes", "Bytes of encoded video.")
        self.target_bitrate_bytes_per_second = gauge(
            "target_bitrate_bytes_per_second",
            "Encoder target bitrate (bytes/s; x8 for bit/s), summed over the active sessions.",
        )
        self.actual_bitrate_bytes_per_second = gauge(
            "actual_bitrate_bytes_per_second",
            "Measured encoder output bitrate (bytes/s), summed over the active sessions.",
        )
        self.keyframes = counter("keyframes", "Keyframes encoded, by reason.", (*s, "reason"))

        # RTP / RTCP.
        self.rtp_packets_sent = counter("rtp_packets_sent", "Video RTP packets sent.")
        self.rtp_bytes_sent = counter("rtp_bytes_sent", "Video RTP payload bytes sent.")
        self.rtcp_nacks_received = counter("rtcp_nacks_received", "RTCP NACKs received.")
        self.rtcp_plis_received = counter("rtcp_plis_received", "RTCP PLIs received.")
        self.rtcp_rtt_seconds = histogram("rtcp_rtt_seconds", "Round-trip time from RTCP reports.")
        self.rtcp_loss_ratio = histogram(
            "rtcp_loss_ratio",
            "Fraction of packets lost (0..1) from RTCP receiver reports.",
            buckets=LOSS_BUCKETS,
        )

        # Congestion control (tuned stack), per controller.
        cc = (*s, "cc")
        self.cc_target_bitrate_bytes_per_second = gauge(
            "cc_target_bitrate_bytes_per_second",
            "Congestion controller's target (bytes/s; x8 for bit/s), summed over active viewers.",
            cc,
        )
        self.cc_estimate_bitrate_bytes_per_second = gauge(
            "cc_estimate_bitrate_bytes_per_second",
            "Congestion controller's link capacity estimate (bytes/s), summed over active viewers.",
            cc,
        )
        self.cc_queueing_delay_seconds = histogram(
            "cc_queueing_delay_seconds",
            "Queueing delay on the media path estimated from transport-cc feedback.",
            cc,
        )
        self.cc_predicted_queueing_seconds = histogram(
            "cc_predicted_queueing_seconds",
            "Queue a packet sent now would meet, as the sender predicts it (the latest "
            "feedback carried forward by what was sent since; frames are skipped above 25 ms).",
            cc,
        )
        self.cc_feedback_received = counter(
            "cc_feedback_received", "Transport-cc and REMB feedback packets received.", cc
        )

        # FEC parity (tuned stack, clients that negotiated it; docs/fec.md).
        self.fec_packets_sent = counter(
            "fec_packets_sent", "FEC parity packets sent (their bytes: fec_bytes_sent)."
        )
        self.fec_bytes_sent = counter(
            "fec_bytes_sent",
            "FEC parity bytes sent (serialized RTP); over rtp_bytes_sent: the overhead.",
        )
        self.fec_columns = gauge(
            "fec_columns",
            "FEC parity packets per frame (0: off, the link loses too little), summed over "
            "the active viewers that negotiated FEC.",
        )

        # The resolution/frame-rate ladder (tuned stack with an adapting controller).
        self.ladder_sessions = gauge(
            "ladder_sessions",
            "Sessions encoding at each rung of the resolution/frame-rate ladder "
            "(0: the configured size and rate; 1, 2, 3: lower ones).",
            (*s, "rung"),
        )
        self.ladder_steps = counter(
            "ladder_steps", "Steps between rungs of the ladder, by direction.", (*s, "direction")
        )

        # Inputs.
        self.inputs_received = counter(
            "inputs_received",
            "Input events passed to the game (a key event once, however many copies arrived).",
        )
        self.inputs_discarded = counter(
            "inputs_discarded",
            "Key event copies not applied, by reason: duplicate (an earlier copy arrived) or"
            " stale (a newer event for the same key was already applied).",
            (*s, "reason"),
        )
        self.rtc_step_errors = counter(
            "rtc_step_errors",
            "Exceptions a seam caught from its steps (the packet dropped or passed on"
            " unchanged), by kind of seam: transport, sender.",
            (*s, "kind"),
        )
        self.inputs_rejected = counter(
            "inputs_rejected", "Input messages rejected, by reason.", (*s, "reason")
        )
        self.input_apply_delay_seconds = histogram(
            "input_apply_delay_seconds",
            "Delay from an input's arrival to the tick that applies it (input_recv -> tick_start).",
        )

        # Figures the clients report back.
        self.client_decode_seconds = histogram(
            "client_decode_seconds", "Client-reported decode time per frame."
        )
        self.client_jitter_buffer_delay_seconds = histogram(
            "client_jitter_buffer_delay_seconds", "Client-reported jitter buffer delay."
        )
        self.client_freezes = counter("client_freezes", "Client-reported video freezes.")
        self.client_fps = histogram(
            "client_fps", "Client-reported frames per second displayed.", buckets=FPS_BUCKETS
        )
        self.input_to_photon_seconds = histogram(
            "input_to_photon_seconds",
            "Client-measured input-to-photon delay (photon - input_sent).",
        )

        # Network simulator.
        self.netsim_packets = counter(
            "netsim_packets", "Packets entering a netsim link.", ("profile", "direction")
        )
        self.netsim_drops = counter(
            "netsim_drops",
            "Packets dropped by a netsim link, by reason.",
            ("profile", "direction", "reason"),
        )
        self.netsim_queue_delay_seconds = histogram(
            "netsim_queue_delay_seconds",
            "Time a packet waited in a netsim link queue.",
            ("profile", "direction"),
        )

        self.build = Info(f"{PREFIX}_build", "Versions of cloudarcade and its media stack.",
                          registry=r)  # fmt: skip
        self.build.info(build_labels())


REGISTRY: Final = CollectorRegistry(auto_describe=True)
METRICS: Final = Metrics(REGISTRY)
