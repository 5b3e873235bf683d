"""The congestion-control cost benchmark runs each controller over real steps and feedback."""

from __future__ import annotations

from cloudarcade.bench.cc_cost import measure


def test_each_controller_sees_every_packet_and_the_feedback_for_them() -> None:
    for name in ("none", "gcc"):
        cost = measure(name, 2_000_000, 0.5)
        assert cost.packets == 30 * 4  # 0.5 s at 60 fps, 4 packets a frame at 2 Mbit/s
        # Each was numbered, recorded, and resolved as received by the feedback.
        assert cost.reported == cost.packets
        assert 15 <= cost.feedbacks <= 25  # one every 25 ms
        assert cost.send_s > 0 and cost.feedback_s > 0
