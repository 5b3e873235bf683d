"""The congestion-control cost benchmark runs each controller over real steps and feedback."""

from __future__ import annotations

from cloudarcade.bench.cc_cost import measure


def test_each_controller_sees_every_packet_and_the_feedback_for_them() -> None:
    for name in ("none", "gcc"):
        send_s, feedback_s, packets, feedbacks = measure(name, 2_000_000, 0.5)
        assert packets == 30 * 4  # 0.5 s at 60 fps, 4 packets a frame at 2 Mbit/s
        assert 15 <= feedbacks <= 25  # one every 25 ms
        assert send_s > 0 and feedback_s > 0
