"""A sans-I/O bottleneck for controller tests: a fake clock, a FIFO link, feedback.

The sender sends ``target / fps`` bytes per frame in 1200-byte packets; the
link serves them at ``capacity(t)`` through a drop-tail queue of
``queue_bytes`` with ``delay`` one way; the receiver's ``FeedbackGenerator``
reports arrivals, and its feedback reaches the sender ``delay`` later. ``jitter``
(s) adds correlated delay noise without reordering.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudarcade.cc import CongestionController, FeedbackGenerator, SentPacketHistory


@dataclass
class LinkRun:
    times: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    queueing: list[float] = field(default_factory=list)
    ahead: list[float] = field(default_factory=list)  # the controller's predicted queue

    def first_time(self, values: list[float], above: float, after: float) -> float | None:
        """When ``values`` first exceeded ``above`` at or after ``after``."""
        for t, v in zip(self.times, values, strict=True):
            if t >= after and v > above:
                return t
        return None

    def targets_between(self, start: float, end: float) -> list[float]:
        return [v for t, v in zip(self.times, self.targets, strict=True) if start <= t < end]


def run_link(
    controller: CongestionController,
    capacity: Callable[[float], float],
    duration: float,
    *,
    delay: float = 0.020,
    queue_bytes: int = 200_000,
    loss: float = 0.0,
    fps: int = 60,
    seed: int = 1,
    jitter: float = 0.0,
    sample_every: int = 50,
) -> LinkRun:
    rng = random.Random(seed)
    history = SentPacketHistory()
    generator = FeedbackGenerator(sender_ssrc=1)
    arrivals: list[tuple[float, int]] = []  # (arrival time, seq) in order
    feedback_due: list[tuple[float, object]] = []
    link_free = 0.0
    last_arrival = 0.0
    wobble = 0.0  # AR(1) jitter, correlation 0.7, packets stay in order
    run = LinkRun()
    tick = 0.001
    next_frame = 0.0
    step = 0
    while step * tick < duration:
        now = step * tick
        step += 1
        if now >= next_frame:
            next_frame += 1 / fps
            frame_bytes = max(int(controller.target / 8 / fps), 1)
            while frame_bytes > 0:
                size = min(1200, frame_bytes)
                frame_bytes -= size
                seq = history.on_sent(size, now)
                controller.on_sent(size, now)
                backlog = (link_free - now) * capacity(now) / 8
                if backlog + size > queue_bytes or rng.random() < loss:
                    continue  # dropped at the bottleneck
                link_free = max(link_free, now) + size * 8 / capacity(now)
                wobble = 0.7 * wobble + (1 - 0.7**2) ** 0.5 * rng.gauss(0.0, jitter)
                last_arrival = max(last_arrival, link_free + delay + abs(wobble))
                arrivals.append((last_arrival, seq))
        while arrivals and arrivals[0][0] <= now:
            arrival, seq = arrivals.pop(0)
            generator.on_packet(seq, arrival)
        for packet in generator.feedback(now):
            feedback_due.append((now + delay, packet))
        while feedback_due and feedback_due[0][0] <= now:
            _, packet = feedback_due.pop(0)
            controller.on_feedback(history.on_feedback(packet), now)  # type: ignore[arg-type]
        if step % sample_every == 0:
            run.times.append(now)
            run.targets.append(controller.target)
            run.queueing.append(controller.state().queueing_delay)
            run.ahead.append(controller.queue_ahead(now))
    return run
