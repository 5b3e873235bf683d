"""The shipped ops assets: promtool on the config and rules, names in the dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cloudarcade.metrics import Metrics, NetsimMetrics, SessionMetrics

from .prometheus_tools import prometheus_tool

OPS = Path(__file__).resolve().parent.parent / "ops"
# A metric or recording-rule name that belongs to us.
NAME = re.compile(r"(?<![\w:$\"])([a-z_:]*cloudarcade[a-z0-9_:]*)")


def run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(args, capture_output=True, timeout=60, check=False, cwd=cwd)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    return output


def exposed_names() -> set[str]:
    """Every sample name a registry exposes once a session and a link have reported."""
    metrics = Metrics(CollectorRegistry())
    s = SessionMetrics(metrics, game="g", codec="h264", profile="lan")
    s.frame_encoded(0.01, 1000, "start")
    NetsimMetrics(metrics, profile="lan").packet("uplink")
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def rule_exprs() -> list[str]:
    """The ``expr`` of every rule in rules.yml (no YAML library: promtool checks the syntax)."""
    exprs: list[str] = []
    current: list[str] | None = None
    for line in (OPS / "rules.yml").read_text().splitlines():
        key = re.match(r"\s*(?:- )?(\w+):(.*)", line)
        if key and key.group(1) == "expr":
            current = [key.group(2).strip(" >|")]
            exprs.append("")
        elif key or line.lstrip().startswith("#"):
            current = None
        elif current is not None:
            current.append(line.strip())
        if current is not None:
            exprs[-1] = " ".join(current).strip()
    return exprs


def recorded_names() -> set[str]:
    text = (OPS / "rules.yml").read_text()
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", text, re.MULTILINE))


def dashboard_exprs() -> list[str]:
    dash = json.loads((OPS / "grafana" / "cloudarcade.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_promtool_checks_rules_and_config() -> None:
    tool = prometheus_tool("promtool")
    assert "SUCCESS" in run(tool, "check", "rules", str(OPS / "rules.yml"))
    assert "SUCCESS" in run(tool, "check", "config", str(OPS / "prometheus.yml"))


def test_dashboard_parses_and_has_the_panels() -> None:
    dash = json.loads((OPS / "grafana" / "cloudarcade.json").read_text())
    assert dash["uid"] == "cloudarcade"
    types = {p["type"] for p in dash["panels"]}
    assert "heatmap" in types
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for word in ("input-to-photon", "p99", "stage", "frames per second", "bitrate", "loss"):
        assert word in titles, word
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert [t["refId"] for t in p["targets"]], p["title"]


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_queries_name_metrics_that_exist(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    known = exposed_names() | recorded_names()
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert len(used) >= 5
    missing = sorted(used - known)
    assert not missing, f"{source} uses names the registry does not expose: {missing}"


def test_alerts_fire_on_synthetic_series(tmp_path: Path) -> None:
    """promtool's rule unit tests: the alerts fire when they should, and only then."""
    tool = prometheus_tool("promtool")
    shutil.copy(OPS / "rules.yml", tmp_path / "rules.yml")
    # 60 s apart; buckets of a histogram whose samples all land at 0.15 s (slow)
    # or at 0.03 s (fast). fps: 50/s (low) or 60/s (fine) per single session.
    slow = 'cloudarcade_input_to_photon_seconds_bucket{game="slow",le="%s"}'
    fast = 'cloudarcade_input_to_photon_seconds_bucket{game="fast",le="%s"}'
    series = []
    for le, slow_on, fast_on in (("0.05", 0, 1), ("0.1", 0, 1), ("0.2", 1, 1), ("+Inf", 1, 1)):
        series.append((slow % le, f"0+{60 * slow_on}x20"))
        series.append((fast % le, f"0+{60 * fast_on}x20"))
    series += [
        ('cloudarcade_frames_sent_total{game="slow"}', "0+3000x20"),
        ('cloudarcade_frames_sent_total{game="fast"}', "0+3600x20"),
        ('cloudarcade_sessions_active{game="slow"}', "1x20"),
        ('cloudarcade_sessions_active{game="fast"}', "1x20"),
        ('cloudarcade_sessions_ended_total{game="slow",reason="failed"}', "0+2x20"),
        ('cloudarcade_sessions_ended_total{game="slow",reason="closed"}', "0+1x20"),
        ('cloudarcade_sessions_ended_total{game="fast",reason="closed"}', "0+5x20"),
        ('up{job="cloudarcade",instance="a"}', "1x20"),
    ]
    input_series = "\n".join(
        f"      - series: '{name}'\n        values: '{values}'" for name, values in series
    )
    (tmp_path / "test.yml").write_text(
        textwrap.dedent(
            """\
            rule_files: [rules.yml]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
            """
        )
        + input_series
        + "\n"
        + textwrap.indent(
            textwrap.dedent(
                """\
                promql_expr_test:
                  - expr: game:cloudarcade_input_to_photon_seconds:p99_5m{game="fast"} < 0.05
                    eval_time: 15m
                    exp_samples:
                      - labels: 'game:cloudarcade_input_to_photon_seconds:p99_5m{game="fast"}'
                        value: 0.0495
                alert_rule_test:
                  - eval_time: 15m
                    alertname: CloudarcadeInputToPhotonHigh
                    exp_alerts:
                      - exp_labels: {severity: warning, game: slow}
                        exp_annotations:
                          summary: p99 input-to-photon above 100 ms for slow
                          description: p99 over 5m is 199ms.
                  - eval_time: 15m
                    alertname: CloudarcadeFpsLow
                    exp_alerts:
                      - exp_labels: {severity: warning, game: slow}
                        exp_annotations:
                          summary: slow streams below 55 fps per session
                          description: "Frames sent per session: 50.0 fps."
                  - eval_time: 15m
                    alertname: CloudarcadeSessionFailures
                    exp_alerts:
                      - exp_labels: {severity: warning, game: slow}
                        exp_annotations:
                          summary: Sessions of slow are failing
                          description: >-
                            20 sessions failed or timed out in 10m
                            (over 10% of those that ended).
                  - eval_time: 15m
                    alertname: CloudarcadeTargetDown
                    exp_alerts: []
                """
            ),
            "    ",
        )
    )
    run(tool, "test", "rules", "test.yml", cwd=tmp_path)
