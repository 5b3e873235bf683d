"""Per-session cost: the CPU-seconds metric, and ``cloudarcade bench capacity``."""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry

from cloudarcade.metrics.definitions import Metrics
from cloudarcade.metrics.session import SessionMetrics

LABELS = {"game": "pong", "codec": "h264", "profile": "none"}


def _cpu(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("cloudarcade_session_cpu_seconds_total", LABELS)
    assert value is not None
    return value


def test_session_cpu_seconds_count_the_session_threads_cpu_time() -> None:
    registry = CollectorRegistry()
    session = SessionMetrics(Metrics(registry), **LABELS)

    def busy() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        session.thread_cpu()  # everything since the thread started

    def idle() -> None:
        session.thread_cpu()
        time.sleep(0.1)  # waiting costs no CPU
        session.thread_cpu()

    for target in (busy, idle):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    counted = _cpu(registry)
    assert counted >= 0.05
    # The idle thread added only its own (small) CPU time, not the 0.1 s it slept.
    assert counted < 0.05 + 0.1
