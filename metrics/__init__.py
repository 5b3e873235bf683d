"""Prometheus metrics for operators: definitions, per-session handles, ``/metrics``.

The server makes one :class:`SessionMetrics` per session and calls its methods
per frame; :func:`metrics_handler` / :func:`start_metrics_server` expose the
registry. See docs/operations.md for the metric list and the ops assets.
"""

from .definitions import METRICS, REGISTRY, Metrics
from .exposition import add_metrics_route, bound_port, metrics_handler, start_metrics_server
from .session import NetsimMetrics, SessionMetrics

__all__ = [
    "METRICS",
    "REGISTRY",
    "Metrics",
    "NetsimMetrics",
    "SessionMetrics",
    "add_metrics_route",
    "bound_port",
    "metrics_handler",
    "start_metrics_server",
]
