"""Per-session and per-link handles for the hot path.

``labels(...)`` costs a dict lookup under a lock plus tuple building on every
call; at 60 frames per second and a dozen updates per frame that adds up, so
the children are resolved once when a session starts and the per-frame methods
only call ``inc()``/``observe()`` on them.

Label values outside the bounded sets in :mod:`cloudarcade.metrics.definitions`
raise ``ValueError`` naming the known ones: a new value is a code change, not
a new time series made at run time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import TypeVar

from cloudarcade.stages import STAGE_NAMES

from .definitions import (
    DIRECTIONS,
    DROP_PHASES,
    INPUT_DISCARD_REASONS,
    KEYFRAME_REASONS,
    LADDER_DIRECTIONS,
    LADDER_RUNGS,
    METRICS,
    NETSIM_DROP_REASONS,
    SESSION_END_REASONS,
    Metrics,
    input_reject_reasons,
)

_T = TypeVar("_T")


def _pick(children: Mapping[str, _T], value: str, what: str) -> _T:
    try:
        return children[value]
    except KeyError:
        known = ", ".join(children)
        raise ValueError(f"unknown {what} {value!r}; known: {known}") from None


class SessionMetrics:
    """The metrics of one streaming session, labels already resolved.

    Creating one counts a started session and an active one; :meth:`close`
    undoes the active count (and this session's share of the bitrate gauges)
    and counts the end reason. A session refused before it streams is
    created and closed with ``"rejected"``.

    Methods are safe to call from the encoder thread (prometheus_client
    children lock internally). Durations are seconds, sizes bytes.
    """

    def __init__(
        self, metrics: Metrics = METRICS, *, game: str, codec: str, profile: str, cc: str = "none"
    ) -> None:
        m = metrics
        lv = (game, codec, profile)
        self.labels = {"game": game, "codec": codec, "profile": profile}
        self._active = m.sessions_active.labels(*lv)
        self._ended = {r: m.sessions_ended.labels(*lv, r) for r in SESSION_END_REASONS}

        self._rendered = m.frames_rendered.labels(*lv)
        self._encoded = m.frames_encoded.labels(*lv)
        self._sent = m.frames_sent.labels(*lv)
        self._dropped = {p: m.frames_dropped.labels(*lv, p) for p in DROP_PHASES}
        self._cpu_s = m.session_cpu_seconds.labels(*lv)
        # CPU seconds already counted, per thread of this session (by thread id).
        self._thread_cpu: dict[int, float] = {}
        self._render_s = m.render_seconds.labels(*lv)
        self._convert_s = m.convert_seconds.labels(*lv)
        self._encode_s = m.encode_seconds.labels(*lv)
        self._stage_s = {st: m.stage_seconds.labels(*lv, st) for st in STAGE_NAMES}

        self._encoded_bytes = m.encoded_bytes.labels(*lv)
        self._target_bps = m.target_bitrate_bytes_per_second.labels(*lv)
        self._actual_bps = m.actual_bitrate_bytes_per_second.labels(*lv)
        self._keyframes = {r: m.keyframes.labels(*lv, r) for r in KEYFRAME_REASONS}

        self._rtp_packets = m.rtp_packets_sent.labels(*lv)
        self._rtp_bytes = m.rtp_bytes_sent.labels(*lv)
        self._nacks = m.rtcp_nacks_received.labels(*lv)
        self._plis = m.rtcp_plis_received.labels(*lv)
        self._rtt_s = m.rtcp_rtt_seconds.labels(*lv)
        self._loss = m.rtcp_loss_ratio.labels(*lv)

        self._inputs = m.inputs_received.labels(*lv)
        self._rejected = {r: m.inputs_rejected.labels(*lv, r) for r in input_reject_reasons()}
        self._discarded = {r: m.inputs_discarded.labels(*lv, r) for r in INPUT_DISCARD_REASONS}
        self._step_errors = {r: m.rtc_step_errors.labels(*lv, r) for r in ("transport", "sender")}
        self._apply_delay_s = m.input_apply_delay_seconds.labels(*lv)

        self._decode_s = m.client_decode_seconds.labels(*lv)
        self._jitter_s = m.client_jitter_buffer_delay_seconds.labels(*lv)
        self._freezes = m.client_freezes.labels(*lv)
        self._fps = m.client_fps.labels(*lv)
        self._input_to_photon_s = m.input_to_photon_seconds.labels(*lv)

        self._cc_target_bps = m.cc_target_bitrate_bytes_per_second.labels(*lv, cc)
        self._cc_estimate_bps = m.cc_estimate_bitrate_bytes_per_second.labels(*lv, cc)
        self._cc_queueing_s = m.cc_queueing_delay_seconds.labels(*lv, cc)
        self._cc_predicted_s = m.cc_predicted_queueing_seconds.labels(*lv, cc)
        self._cc_feedback = m.cc_feedback_received.labels(*lv, cc)
        # Each viewer's current contribution to the summed cc gauges: {viewer: (target, est)}.
        self._cc: dict[int, tuple[float, float]] = {}

        self._fec_packets = m.fec_packets_sent.labels(*lv)
        self._fec_bytes = m.fec_bytes_sent.labels(*lv)
        self._fec_columns = m.fec_columns.labels(*lv)
        self._fec: dict[int, int] = {}  # each viewer's share of the fec_columns gauge

        self._ladder = {r: m.ladder_sessions.labels(*lv, r) for r in LADDER_RUNGS}
        self._ladder_steps = {d: m.ladder_steps.labels(*lv, d) for d in LADDER_DIRECTIONS}
        self._rung: str | None = None

        # This session's current contribution to the summed bitrate gauges.
        self._target = 0.0
        self._actual = 0.0
        self.closed = False

        m.sessions_started.labels(*lv).inc()
        self._active.inc()

    # -- frames -------------------------------------------------------------

    def frame_rendered(self, render_s: float, convert_s: float) -> None:
        """One frame rendered (``render`` stage) and converted (``convert`` stage)."""
        self._rendered.inc()
        self._render_s.observe(render_s)
        self._convert_s.observe(convert_s)

    def thread_cpu(self) -> None:
        """Count the CPU time the calling thread used since its previous call.

        Call it from the session's own threads (render, encode), once per
        frame: ``time.thread_time()`` reads the calling thread's CPU clock
        (one ``clock_gettime``, well under a microsecond). A thread's first
        call counts everything since the thread started, so the threads must
        be the session's own, not shared ones.
        """
        now = time.thread_time()
        ident = threading.get_ident()
        # Only this thread writes its own key: no lock needed.
        self._cpu_s.inc(max(now - self._thread_cpu.get(ident, 0.0), 0.0))
        self._thread_cpu[ident] = now

    def frame_encoded(
        self, encode_s: float, nbytes: int, keyframe_reason: str | None = None
    ) -> None:
        """One frame encoded into ``nbytes``; ``keyframe_reason`` when it is a keyframe.

        ``keyframe_reason`` is one of "start", "pli", "fir", "interval".
        """
        self._encoded.inc()
        self._encode_s.observe(encode_s)
        self._encoded_bytes.inc(nbytes)
        if keyframe_reason is not None:
            _pick(self._keyframes, keyframe_reason, "keyframe reason").inc()

    def frame_sent(self, packets: int = 0, nbytes: int = 0) -> None:
        """The last RTP packet of a frame left; ``packets``/``nbytes`` as in :meth:`rtp_sent`."""
        self._sent.inc()
        if packets:
            self.rtp_sent(packets, nbytes)

    def rtp_sent(self, packets: int, nbytes: int) -> None:
        """RTP packets sent outside :meth:`frame_sent` (e.g. retransmissions)."""
        self._rtp_packets.inc(packets)
        self._rtp_bytes.inc(nbytes)

    def frame_dropped(self, phase: str) -> None:
        """A frame dropped in ``phase``: "render_skip", "encode_busy", "cc_skip" or "send"."""
        _pick(self._dropped, phase, "drop phase").inc()

    def stage(self, name: str, seconds: float) -> None:
        """Time spent in one stage of :data:`cloudarcade.stages.STAGE_NAMES`."""
        _pick(self._stage_s, name, "stage").observe(seconds)

    def stages(self, durations: Mapping[str, float]) -> None:
        """Several stages at once, e.g. ``cloudarcade.stages.stage_durations(stamps)``."""
        children = self._stage_s
        for name, seconds in durations.items():
            _pick(children, name, "stage").observe(seconds)

    def bitrate(self, target_bps: float, actual_bps: float) -> None:
        """The encoder's target and measured output bitrate now, in bits per second.

        Exposed in bytes per second (Prometheus base unit), summed over the
        active sessions with the same labels: each session adds its change.
        """
        target, actual = target_bps / 8, actual_bps / 8
        self._target_bps.inc(target - self._target)
        self._actual_bps.inc(actual - self._actual)
        self._target = target
        self._actual = actual

    # -- congestion control -------------------------------------------------

    def cc_update(
        self,
        viewer: int,
        target_bps: float,
        estimate_bps: float,
        queueing_s: float,
        predicted_s: float = 0.0,
    ) -> None:
        """A viewer's controller after one feedback packet (bits/s and seconds)."""
        old_target, old_estimate = self._cc.get(viewer, (0.0, 0.0))
        target, estimate = target_bps / 8, estimate_bps / 8
        self._cc_target_bps.inc(target - old_target)
        self._cc_estimate_bps.inc(estimate - old_estimate)
        self._cc[viewer] = (target, estimate)
        self._cc_queueing_s.observe(queueing_s)
        self._cc_predicted_s.observe(predicted_s)
        self._cc_feedback.inc()

    def cc_viewer_gone(self, viewer: int) -> None:
        """Take a viewer's share out of the cc gauges (idempotent)."""
        target, estimate = self._cc.pop(viewer, (0.0, 0.0))
        self._cc_target_bps.dec(target)
        self._cc_estimate_bps.dec(estimate)

    def fec_parity(self, packets: int, size: int) -> None:
        """``packets`` FEC parity packets of ``size`` bytes in all went out."""
        self._fec_packets.inc(packets)
        self._fec_bytes.inc(size)

    def fec_columns(self, viewer: int, columns: int) -> None:
        """A viewer's FEC now sends ``columns`` parity packets a frame (0: off, or gone)."""
        old = self._fec.pop(viewer, 0)
        if columns:
            self._fec[viewer] = columns
        self._fec_columns.inc(columns - old)

    # -- inputs -------------------------------------------------------------

    def rung(self, index: int) -> None:
        """The session now encodes at rung ``index`` of its ladder (0: the configured one)."""
        new = _pick(self._ladder, str(index), "ladder rung")
        old = self._rung
        if old == str(index):
            return
        if old is not None:
            self._ladder[old].dec()
            self._ladder_steps["down" if index > int(old) else "up"].inc()
        new.inc()
        self._rung = str(index)

    def input_received(self) -> None:
        """An input event was passed to the game (the first copy of a key event)."""
        self._inputs.inc()

    def input_discarded(self, reason: str) -> None:
        """A key event copy not applied: one of ``INPUT_DISCARD_REASONS``."""
        _pick(self._discarded, reason, "input discard reason").inc()

    def step_error(self, seam: str) -> None:
        """A seam caught an exception from one of its steps: "transport" or "sender"."""
        _pick(self._step_errors, seam, "seam kind").inc()

    def input_rejected(self, reason: str) -> None:
        """An input refused: a ``cloudarcade.protocol.REJECT_REASONS`` value or "rate_limited"."""
        _pick(self._rejected, reason, "input reject reason").inc()

    def input_applied(self, delay_s: float) -> None:
        """An input was applied, ``delay_s`` after it arrived (input_recv -> tick_start)."""
        self._apply_delay_s.observe(delay_s)

    # -- RTCP ---------------------------------------------------------------

    def rtcp(self, rtt_s: float | None, loss_fraction: float | None) -> None:
        """Figures from one RTCP report; ``None`` for what the report does not carry."""
        if rtt_s is not None:
            self._rtt_s.observe(rtt_s)
        if loss_fraction is not None:
            self._loss.observe(loss_fraction)

    def nack(self, count: int = 1) -> None:
        """``count`` RTCP NACKs received."""
        self._nacks.inc(count)

    def pli(self) -> None:
        """An RTCP PLI received."""
        self._plis.inc()

    # -- client reports -----------------------------------------------------

    def client_report(
        self,
        *,
        decode_s: Iterable[float] = (),
        jitter_buffer_delay_s: Iterable[float] = (),
        input_to_photon_s: Iterable[float] = (),
        stages: Mapping[str, float] | None = None,
        freezes: int = 0,
        fps: float | None = None,
    ) -> None:
        """Figures a client reported back; every argument is optional.

        The per-frame figures are iterables so that one report can carry many
        frames. ``freezes`` is the number of new freezes since the last report.
        """
        for v in decode_s:
            self._decode_s.observe(v)
        for v in jitter_buffer_delay_s:
            self._jitter_s.observe(v)
        for v in input_to_photon_s:
            self._input_to_photon_s.observe(v)
        if stages:
            self.stages(stages)
        if freezes:
            self._freezes.inc(freezes)
        if fps is not None:
            self._fps.observe(fps)

    # -- end ----------------------------------------------------------------

    def close(self, reason: str) -> None:
        """End the session: "closed", "failed", "timeout", "shutdown" or "rejected".

        Idempotent: only the first call counts.
        """
        ended = _pick(self._ended, reason, "session end reason")
        if self.closed:
            return
        self.closed = True
        self.bitrate(0.0, 0.0)
        for viewer in list(self._cc):
            self.cc_viewer_gone(viewer)
        for viewer in list(self._fec):
            self.fec_columns(viewer, 0)
        if self._rung is not None:
            self._ladder[self._rung].dec()
            self._rung = None
        self._active.dec()
        ended.inc()


class NetsimMetrics:
    """The metrics of the netsim links of one ``profile``, labels already resolved."""

    def __init__(self, metrics: Metrics = METRICS, *, profile: str) -> None:
        m = metrics
        self._packets = {d: m.netsim_packets.labels(profile, d) for d in DIRECTIONS}
        self._drops = {
            d: {r: m.netsim_drops.labels(profile, d, r) for r in NETSIM_DROP_REASONS}
            for d in DIRECTIONS
        }
        self._queue_s = {d: m.netsim_queue_delay_seconds.labels(profile, d) for d in DIRECTIONS}

    def packet(self, direction: str, count: int = 1) -> None:
        """``count`` packets entered the ``direction`` ("uplink" or "downlink") link."""
        _pick(self._packets, direction, "direction").inc(count)

    def dropped(self, direction: str, reason: str, count: int = 1) -> None:
        """``count`` packets dropped: reason: one of ``NETSIM_DROP_REASONS``."""
        _pick(_pick(self._drops, direction, "direction"), reason, "netsim drop reason").inc(count)

    def queued(self, direction: str, seconds: float) -> None:
        """A packet left the queue after waiting ``seconds``."""
        _pick(self._queue_s, direction, "direction").observe(seconds)
