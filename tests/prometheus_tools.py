"""The Prometheus binaries (Debian package prometheus) that the metrics tests run for real."""

from __future__ import annotations

import os
import shutil

import pytest


def prometheus_tool(name: str) -> str:
    """The path of ``name`` ("promtool", "prometheus"); a skip without it, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH (Debian package prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
