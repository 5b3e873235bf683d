"""The Prometheus binaries (Debian package prometheus) that the metrics tests run for real."""

from __future__ import annotations

import shutil

import pytest


def prometheus_tool(name: str) -> str:
    """The path of ``name`` ("promtool", "prometheus"); the test FAILS without it.

    Never a skip, in CI or not: a machine without the binaries would otherwise
    pass the metrics tests without running them (``make test`` installs them).
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: install the Debian package prometheus "
                    "(make system-packages)")
    return path
