"""One viewer's FEC: negotiated in the answer, a send step, its policy, its metrics.

A viewer gets FEC when the session's ``fec`` option is ``auto``, its stack
has congestion control with transport-cc (the policy reads the loss from that
feedback) and its client asked for it in the offer (:mod:`cloudarcade.rtc.fec_sdp`;
only the Python client does). The parity packets come out of the
controller's target: the encoder is given ``target x media_share``
(:attr:`ViewerFec.media_share`), so FEC never pushes the link past the target.
See docs/fec.md.
"""

from __future__ import annotations

import logging
import random

from cloudarcade.cc.fec_policy import MAX_PARITY_RATIO, FecPolicy
from cloudarcade.cc.steps import SendSideCongestion
from cloudarcade.metrics import SessionMetrics
from cloudarcade.rtc import fec_sdp
from cloudarcade.rtc.fec import FecEncoder
from cloudarcade.rtc.fec_steps import FecSend
from cloudarcade.server.options import FEC_MODES

logger = logging.getLogger(__name__)


class ViewerFec:
    """FEC for one viewer's video: parity after each frame while its link loses packets."""

    def __init__(
        self,
        params: fec_sdp.FecParams,
        *,
        media_ssrc: int,
        metrics: SessionMetrics,
        viewer: int,
        policy: FecPolicy | None = None,
    ) -> None:
        self.params = params
        self.policy = policy or FecPolicy()
        self._metrics = metrics
        self._viewer = viewer
        encoder = FecEncoder(media_ssrc=media_ssrc, ssrc=params.ssrc,
                             payload_type=params.payload_type,
                             sequence_number=random.randrange(1 << 16),
                             max_ratio=MAX_PARITY_RATIO)
        self.step = FecSend(encoder, self._columns, on_parity=metrics.fec_parity)

    @classmethod
    def negotiate(
        cls, mode: str, offer_sdp: str, answer_sdp: str, congestion: SendSideCongestion | None,
        *, media_ssrc: int, metrics: SessionMetrics, viewer: int,
    ) -> tuple[ViewerFec | None, str]:
        """The viewer's FEC (None: not negotiated) and the answer SDP to send."""
        if mode not in FEC_MODES:
            raise ValueError(f"fec mode {mode!r}; expected one of {', '.join(FEC_MODES)}")
        if (mode == "off" or congestion is None or congestion.extension_id is None
                or not fec_sdp.offered(offer_sdp)):
            return None, answer_sdp
        params = fec_sdp.choose(offer_sdp, answer_sdp)
        fec = cls(params, media_ssrc=media_ssrc, metrics=metrics, viewer=viewer,
                  policy=FecPolicy(always=mode == "on"))
        congestion.on_results.append(fec.policy.on_results)
        logger.info("viewer %d: FEC parity as payload type %d, SSRC %d", viewer,
                    params.payload_type, params.ssrc)
        return fec, fec_sdp.add_to_answer(answer_sdp, params)

    @property
    def media_share(self) -> float:
        """The part of the controller's target the encoder may use."""
        return self.step.media_share if self.policy.active else 1.0

    def _columns(self) -> int:
        columns = self.policy.columns()
        if columns != self.step.columns:
            self._metrics.fec_columns(self._viewer, columns)
            policy = self.policy
            # On and off at INFO; the count moves with the burst estimate, at DEBUG.
            level = logging.INFO if not columns or not self.step.columns else logging.DEBUG
            logger.log(level, "viewer %d: FEC %d parity packets a frame (loss %.2f %%, mean "
                       "burst %.1f packets)", self._viewer, columns, policy.loss * 100,
                       policy.mean_burst)
        return columns

    def close(self) -> None:
        self._metrics.fec_columns(self._viewer, 0)
