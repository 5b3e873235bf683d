"""``cloudarcade bench --cluster``: the dispatch rules (fake clock), and a real Ray cluster.

The cluster tests start a head and a worker as ``ray start`` processes on
127.0.0.2 and 127.0.0.3 (one module-wide cluster), run a tiny sweep through
the CLI, then kill the worker during a second run. Both nodes share this
host, which is what the shared-host rule is about.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudarcade.bench.capacity import CapacityConfig
from cloudarcade.bench.capacity_ray import RayClients
from cloudarcade.bench.cluster import ClusterError, import_ray
from cloudarcade.bench.compare import compare
from cloudarcade.bench.dispatch import FAILED, MEASURED, NODE_LOST, Dispatch, Node
from cloudarcade.bench.jsonl import read_probes
from cloudarcade.bench.node import missing_requirements, refusal
from cloudarcade.bench.report import load_results
from cloudarcade.bench.scenario import BenchConfig, Cell
from cloudarcade.bench.unit import Unit, plan_units
from tests.ray_cluster import ENV, LocalCluster

CELL = Cell("h264", 320, 180, 30, 500_000)


def _units(n: int) -> list[Unit]:
    return [Unit("tuned", CELL, f"p{i}", 1) for i in range(n)]


# -- dispatch rules (sans-I/O) ------------------------------------------------


def test_one_unit_per_host_unless_shared_hosts_are_allowed() -> None:
    a, b, c = Node("a", "a", "host1"), Node("b", "b", "host1"), Node("c", "c", "host2")
    dispatch = Dispatch(_units(4), [a, b, c])
    first = dispatch.next_attempts(now=0.0)
    assert sorted(x.node.host for x in first) == ["host1", "host2"]  # never two on host1
    assert dispatch.next_attempts(now=1.0) == []  # everything busy
    on_host1 = next(x for x in first if x.node.host == "host1")
    dispatch.finished(on_host1, now=2.0)
    again = dispatch.next_attempts(now=2.0)
    # The other node of host1 takes its turn (least used first).
    assert [x.node.node_id for x in again] == ["b" if on_host1.node.node_id == "a" else "a"]
    assert not dispatch.states[on_host1.unit].shared_host

    shared = Dispatch(_units(3), [a, b, c], allow_shared_host=True)
    attempts = shared.next_attempts(now=0.0)
    assert len(attempts) == 3
    for attempt in attempts:
        shared.finished(attempt, now=1.0)
    flags = {x.node.node_id: shared.states[x.unit].shared_host for x in attempts}
    assert flags == {"a": True, "b": True, "c": False}
    assert shared.done


def test_a_unit_whose_node_died_is_retried_elsewhere_a_bounded_number_of_times() -> None:
    nodes = [Node(n, n, n) for n in "abc"]
    dispatch = Dispatch(_units(1), nodes, retries=1)
    (first,) = dispatch.next_attempts(now=0.0)
    dispatch.failed(first, now=1.0, error="NodeDiedError", node_lost=True)
    (second,) = dispatch.next_attempts(now=1.0)
    assert second.number == 2 and second.node != first.node  # the dead node is not used
    dispatch.failed(second, now=2.0, error="NodeDiedError", node_lost=True)
    assert dispatch.next_attempts(now=2.0) == []  # retries used up
    state = dispatch.states[first.unit]
    assert state.outcome == FAILED and "node lost 2 time(s)" in (state.error or "")
    assert [a.outcome for a in state.attempts] == [NODE_LOST, NODE_LOST]
    assert dispatch.done and dispatch.retried() == 1
    entry = dispatch.to_dict()[0]
    assert entry["retries"] == 1 and entry["attempts"][1]["node"] == second.node.label


def test_a_unit_that_fails_by_itself_is_not_retried_and_the_run_goes_on() -> None:
    dispatch = Dispatch(_units(2), [Node("a", "a", "a")])
    (first,) = dispatch.next_attempts(now=0.0)
    dispatch.failed(first, now=1.0, error="UnitRequirementError: no Chromium", node_lost=False)
    (second,) = dispatch.next_attempts(now=1.0)
    assert second.node.node_id == "a"  # the node is fine
    dispatch.finished(second, now=2.0)
    assert [s.outcome for s in dispatch.states.values()] == [FAILED, MEASURED]
    assert dispatch.states[first.unit].error == "UnitRequirementError: no Chromium"


def test_when_every_node_is_gone_the_rest_fails_with_a_reason() -> None:
    dispatch = Dispatch(_units(2), [Node("a", "a", "a")], retries=3)
    (first,) = dispatch.next_attempts(now=0.0)
    dispatch.failed(first, now=1.0, error="NodeDiedError", node_lost=True)
    assert dispatch.next_attempts(now=1.0) == []
    assert dispatch.done
    assert {s.error for s in dispatch.states.values()} >= {"no bench node left alive"}
    with pytest.raises(ValueError, match="retries"):
        Dispatch([], [], retries=-1)


def test_node_checks_name_what_is_missing_or_different() -> None:
    assert missing_requirements("headless") == []
    assert missing_requirements("chromium") == []  # this machine has Debian's Chromium
    facts = {"git": {"revision": "abc"}}
    assert refusal(facts, {"revision": "abc"}) is None
    assert "differs from the driver's def" in (refusal(facts, {"revision": "def"}) or "")


def test_without_the_extra_cluster_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without Ray looks like
    with pytest.raises(ClusterError, match=r"pip install 'cloudarcade\[cluster\]'"):
        import_ray()


def test_units_cover_the_matrix_in_the_local_order() -> None:
    config = BenchConfig(out=Path("x"), profiles=["ideal", "lte"], cells=[CELL],
                         stacks=["tuned", "stock"], seed=7)
    units = plan_units(config)
    assert [(u.stack, u.profile) for u in units] == [
        ("tuned", "ideal"), ("tuned", "lte"), ("stock", "ideal"), ("stock", "lte")]
    assert {u.seed for u in units} == {7}


# -- a real cluster -------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # The nodes lack Chromium (as far as the chromium client can tell).
    local = LocalCluster(env={"CLOUDARCADE_CHROMIUM": "/nonexistent/chromium"})
    try:
        local.start_head("127.0.0.2")
        local.add_worker("127.0.0.3")
        yield local
    finally:
        local.stop()


def _bench(cluster: LocalCluster, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudarcade.cli", "bench", "--cluster", cluster.address,
         "--resolution", "320x180", "--fps", "30", "--bitrate", "500k", "--probes", "3",
         "--probe-interval", "0.1", "--probe-timeout", "0.5", "--warmup", "0.3",
         "--out", str(out), *extra],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _cluster_metadata(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "metadata.json").read_text())["cluster"]
    return data


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["submitted"] < b["ended"] and b["submitted"] < a["ended"])


@pytest.mark.slow
def test_a_sweep_on_two_nodes_writes_what_a_local_run_writes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    process = _bench(cluster, out, "--profiles", "ideal,wired", "--stack", "tuned,stock")
    output, _ = process.communicate(timeout=150)
    assert process.returncode == 0, output
    assert "several bench nodes" in output  # the shared host was noticed

    for directory in (out, out / "stock"):
        results = load_results(directory)  # what compare and the report read
        assert [s.profile for s in results.summaries] == ["ideal", "wired"]
        probes, _ = read_probes(directory / "probes.jsonl")
        assert len(probes) == 2 * 3
        assert all(s.extra["node"].endswith(("127.0.0.2", "127.0.0.3"))
                   for s in results.summaries)
    assert (out / "report.html").is_file()
    assert compare(out, out / "stock") is not None

    meta = _cluster_metadata(out)
    assert {n["ip"] for n in meta["nodes"]} == {"127.0.0.2", "127.0.0.3"}
    assert all(n["refused"] is None and n["git"]["revision"] for n in meta["nodes"])
    assert all(n["cpu_model"] is not None and n["cpus"] for n in meta["nodes"])
    units = meta["units"]
    assert len(units) == 4 and all(u["outcome"] == "measured" for u in units)
    attempts = [u["attempts"][0] for u in units]
    assert {a["node"].split()[-1] for a in attempts} == {"127.0.0.2", "127.0.0.3"}
    # One host: never two units at once, and no row flagged.
    assert not any(_overlap(a, b) for i, a in enumerate(attempts) for b in attempts[i + 1:])
    assert not any(u["shared_host"] for u in units)
    assert all(u["timings"]["overhead_s"] >= 0 for u in units)


@pytest.mark.slow
def test_a_node_without_chromium_fails_its_units_clearly_not_the_run(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    out = tmp_path / "browser"
    process = _bench(cluster, out, "--client", "chromium", "--profiles", "ideal,wired",
                     "--stack", "tuned", "--allow-shared-host")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output  # finished, but not everything was measured
    assert "not measured" in output
    meta = _cluster_metadata(out)
    assert all(n["chromium"] is None for n in meta["nodes"])
    for unit in meta["units"]:
        assert unit["outcome"] == "failed" and unit["retries"] == 0
        assert "UnitRequirementError: node " in unit["error"]
        assert "/nonexistent/chromium: no Chromium there" in unit["error"]
    assert (out / "metadata.json").is_file()


@pytest.mark.slow
def test_capacity_clients_run_as_ray_tasks_on_the_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "cloudarcade.cli", "bench", "capacity", "--cluster",
               cluster.address, "--resolution", "320x180", "--max", "2", "--start", "2",
               "--warmup", "0.3", "--duration", "1", "--confirm", "0",
               "--out", str(tmp_path / "cap")]
    # Every node is on this machine: the clients would steal the server's cores.
    with pytest.raises(ClusterError, match="no node of the cluster is on another machine"):
        RayClients(CapacityConfig(out=tmp_path), cluster.address)
    shared = subprocess.run([*command, "--allow-shared-host"], env=ENV, capture_output=True,
                            text=True, timeout=150)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    data = json.loads((tmp_path / "cap" / "capacity.json").read_text())
    assert data["clients"] == "Ray tasks on 2 node(s)"
    (row,) = data["rows"]
    assert row["sessions"] == 2 and len(row["clients"]) == 2


@pytest.mark.slow
def test_killing_a_worker_mid_run_still_measures_every_unit_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    worker = cluster.nodes[1]
    out = tmp_path / "killed"
    process = _bench(cluster, out, "--profiles", "ideal,wired", "--stack", "tuned",
                     "--allow-shared-host", "--probes", "12")
    try:
        # Wait until the worker node runs a unit: its server is in the node's process group.
        deadline = time.monotonic() + 90
        while not any(b"cloudarcade.cli\x00serve" in _cmdline(pid) for pid in cluster.pids(worker)):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker never started a unit"
            time.sleep(0.2)
        cluster.kill_node(worker)
        output, _ = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "node lost" in output

    meta = _cluster_metadata(out)
    assert meta["retried"] == 1
    units = {u["profile"]: u for u in meta["units"]}
    assert all(u["outcome"] == "measured" for u in units.values())
    retried = next(u for u in units.values() if u["retries"] == 1)
    assert [a["outcome"] for a in retried["attempts"]] == ["node_lost", "measured"]
    assert retried["attempts"][0]["node"].endswith("127.0.0.3")
    assert retried["attempts"][1]["node"].endswith("127.0.0.2")
    # Every unit measured exactly once: 12 probes each, none twice.
    probes, _ = read_probes(out / "probes.jsonl")
    for profile in ("ideal", "wired"):
        indices = sorted(p.probe for p in probes if p.profile == profile)
        assert indices == list(range(12)), profile
    # --allow-shared-host: the rows measured on the shared host are flagged.
    results = load_results(out)
    assert all(s.extra["shared_host"] for s in results.summaries)
    assert "SHARED HOST" in (out / "report.html").read_text()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
