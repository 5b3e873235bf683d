"""A viewer's FEC: negotiated only when asked for, allowed and measurable; its metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from cloudarcade.cc import create_controller
from cloudarcade.cc.history import PacketResult
from cloudarcade.cc.steps import SendSideCongestion
from cloudarcade.metrics import Metrics, SessionMetrics
from cloudarcade.rtc import fec_sdp
from cloudarcade.server.fec import ViewerFec

OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 H264/90000\r\n"


def _congestion(extension_id: int | None = 3) -> SendSideCongestion:
    controller = create_controller("none", initial=8e6, min_rate=4e5, max_rate=8e6)
    return SendSideCongestion(controller, extension_id=extension_id, on_update=lambda s: None)


def _negotiate(mode: str, offer: str, congestion: SendSideCongestion | None,
               metrics: SessionMetrics) -> tuple[ViewerFec | None, str]:
    return ViewerFec.negotiate(mode, offer, OFFER, congestion, media_ssrc=1234,
                               metrics=metrics, viewer=1)


LABELS = {"game": "terrain", "codec": "h264", "profile": "5g-congested"}


@pytest.fixture
def metrics() -> SessionMetrics:
    return SessionMetrics(Metrics(CollectorRegistry()), game="terrain", codec="h264",
                          profile="5g-congested", cc="none")


def test_only_an_offer_that_asks_with_transport_cc_and_auto_gets_it(
    metrics: SessionMetrics,
) -> None:
    asked = fec_sdp.add_to_offer(OFFER)
    assert _negotiate("auto", OFFER, _congestion(), metrics) == (None, OFFER)
    assert _negotiate("off", asked, _congestion(), metrics) == (None, OFFER)
    assert _negotiate("auto", asked, None, metrics) == (None, OFFER)
    assert _negotiate("auto", asked, _congestion(extension_id=None), metrics) == (None, OFFER)
    congestion = _congestion()
    fec, answer = _negotiate("auto", asked, congestion, metrics)
    assert fec is not None and fec_sdp.from_answer(answer) == fec.params
    assert fec.params.payload_type not in (96, 97)
    assert congestion.on_results == [fec.policy.on_results]
    with pytest.raises(ValueError, match="fec mode 'sometimes'; expected one of auto, on, off"):
        _negotiate("sometimes", asked, _congestion(), metrics)


def test_columns_follow_the_loss_and_show_in_the_gauge() -> None:
    registry = CollectorRegistry()
    metrics = SessionMetrics(Metrics(registry), game="terrain", codec="h264",
                             profile="5g-congested", cc="none")
    fec, _ = _negotiate("auto", fec_sdp.add_to_offer(OFFER), _congestion(), metrics)
    assert fec is not None
    assert fec.media_share == 1.0 and fec._columns() == 0
    lossy = [PacketResult(i, 1200, 0.0, None if i % 50 < 3 else 0.01) for i in range(1000)]
    fec.policy.on_results(lossy, 0.0)
    columns = fec._columns()
    assert columns >= 1
    fec.step.encoder.columns = columns  # as FecSend does with what _columns returns
    assert registry.get_sample_value("cloudarcade_fec_columns", LABELS) == columns
    fec.close()
    assert registry.get_sample_value("cloudarcade_fec_columns", LABELS) == 0
