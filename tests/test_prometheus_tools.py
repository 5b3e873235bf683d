"""A missing Prometheus binary fails the metrics tests; it never skips them, CI or not."""

from __future__ import annotations

import pytest

from .prometheus_tools import prometheus_tool


@pytest.mark.parametrize("ci", ["", "1"])
def test_a_missing_binary_fails_with_or_without_ci(
    ci: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match=r"promtool is not on PATH.*prometheus"):
        prometheus_tool("promtool")


def test_the_installed_binaries_are_found() -> None:
    assert prometheus_tool("promtool").endswith("promtool")
    assert prometheus_tool("prometheus").endswith("prometheus")
