"""``cloudarcade bench --cluster ADDRESS``: a run's units as Ray tasks, one node each.

Each unit (profile × cell × stack × seed) is a Ray task that needs the
custom resource ``cloudarcade_bench`` (each node has one), so a unit has its
node to itself. The driver:

1. connects to the cluster (``ray.init(address=...)``; ``auto`` for the local one);
2. asks every node with the resource for its facts (hostname, boot id, CPU,
   versions, git revision) and refuses nodes on another git revision;
3. submits units through :class:`cloudarcade.bench.dispatch.Dispatch`, which
   keeps one unit per host at a time (nodes that share a host share its cores)
   unless ``allow_shared_host``, and retries a unit whose node died on another
   node, a bounded number of times;
4. writes each unit's records to the same JSONL files as a local run as soon
   as the unit returns, then the summary, metadata and report
   (:func:`cloudarcade.bench.runner.finish_run`).

Ray runs the tasks, moves the records and notices dead nodes; nothing here
schedules, queues or transports on its own. Ray is an optional extra:
``pip install 'cloudarcade[cluster]'``.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cloudarcade.bench.dispatch import Attempt, Dispatch, Node
from cloudarcade.bench.metadata import git_state
from cloudarcade.bench.node import host_key, node_facts, refusal, run_unit_here
from cloudarcade.bench.report import RunResults
from cloudarcade.bench.runner import finish_run, run_key, stack_results
from cloudarcade.bench.scenario import BenchConfig
from cloudarcade.bench.unit import UnitRecords, plan_units

RESOURCE = "cloudarcade_bench"
# Seconds to wait for every node's facts before giving up on the cluster.
PROBE_TIMEOUT = 120.0
# Ray errors that mean "the node (or its worker process) went away", not "the unit failed".
_LOST = ("NodeDiedError", "WorkerCrashedError", "TaskUnschedulableError", "ObjectLostError",
         "LocalRayletDiedError", "RaySystemError")
_NODE_DEAD = ("NodeDiedError", "TaskUnschedulableError", "LocalRayletDiedError")


class ClusterError(RuntimeError):
    """The cluster cannot run the bench; the message says why and what to do."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "--cluster needs Ray, which is an optional extra: pip install 'cloudarcade[cluster]'"
        ) from None
    return ray


def ray_init(address: str) -> Any:
    """``ray``, connected to the cluster at ``address`` (``auto``: the local one)."""
    ray = import_ray()
    # Never report usage to Ray's servers: all traffic stays on the cluster.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ClusterError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}. Start one with "
            f"`ray start --head --resources='{{\"{RESOURCE}\": 1}}'` (docs/cluster.md)"
        ) from exc
    return ray


@contextmanager
def connected(address: str) -> Iterator[Any]:
    """:func:`ray_init` for the length of a ``with`` block."""
    ray = ray_init(address)
    try:
        yield ray
    finally:
        ray.shutdown()


def bench_nodes(ray: Any) -> list[dict[str, Any]]:
    """The alive nodes that hold the bench resource."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get(RESOURCE, 0) >= 1]
    if not nodes:
        raise ClusterError(
            f"no node of the cluster has the resource {RESOURCE!r}; start each bench node "
            f"with ray start ... --resources='{{\"{RESOURCE}\": 1}}'"
        )
    return nodes


def _pinned(ray: Any, node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def probe_nodes(ray: Any, nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every node's facts (:func:`cloudarcade.bench.node.node_facts`), by node id."""
    remote = ray.remote(node_facts)
    refs = {
        n["NodeID"]: remote.options(num_cpus=0, scheduling_strategy=_pinned(ray, n["NodeID"]),
                                    max_retries=0).remote()
        for n in nodes
    }
    facts = {}
    for node in nodes:
        try:
            facts[node["NodeID"]] = ray.get(refs[node["NodeID"]], timeout=PROBE_TIMEOUT)
        except Exception as exc:
            raise ClusterError(
                f"node {node['NodeManagerAddress']} did not report its facts: {exc}; "
                "is cloudarcade installed there (docs/cluster.md)?"
            ) from exc
        facts[node["NodeID"]]["ip"] = node["NodeManagerAddress"]
    return facts


def _error_text(exc: BaseException) -> str:
    """The unit's own exception for a RayTaskError, else the Ray error's first line."""
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class ClusterRun:
    """One ``--cluster`` run: connect, check nodes, dispatch units, write outputs."""

    def __init__(
        self, config: BenchConfig, address: str, *, allow_shared_host: bool = False,
        retries: int = 2, console: Console | None = None,
    ) -> None:
        self.config = config
        self.address = address
        self.allow_shared_host = allow_shared_host
        self.retries = retries
        self.console = console or Console(stderr=True)
        self.results = stack_results(config)
        self.nodes: list[dict[str, Any]] = []
        self.timings: dict[Any, dict[str, float]] = {}
        # Labels and errors of the units that failed (the run went on without them).
        self.failed: list[str] = []

    def run(self) -> dict[str, RunResults]:
        config = self.config
        config.out.mkdir(parents=True, exist_ok=True)
        started = time.time()
        interrupted = False
        dispatch: Dispatch | None = None
        try:
            with connected(self.address) as ray:
                nodes = self._accepted_nodes(ray)
                dispatch = Dispatch(plan_units(config), nodes,
                                    allow_shared_host=self.allow_shared_host,
                                    retries=self.retries)
                try:
                    self._dispatch(ray, dispatch)
                except KeyboardInterrupt:
                    interrupted = True
                    dispatch.abandon(time.monotonic(), "interrupted")
                    self.console.print("[yellow]interrupted: writing what was measured[/]")
        finally:
            for each in self.results.values():
                each.close()
        runs = finish_run(config, self.results, self.console, started=started,
                          interrupted=interrupted, extra_metadata=self._metadata(dispatch))
        if dispatch is not None:
            self.failed = [f"{s.unit.label}: {s.error}" for s in dispatch.states.values()
                           if s.outcome == "failed"]
            for line in self.failed:
                self.console.print(f"[red]not measured[/] {line}")
        if interrupted:
            raise KeyboardInterrupt
        return runs

    def _accepted_nodes(self, ray: Any) -> list[Node]:
        found = bench_nodes(ray)
        facts = probe_nodes(ray, found)
        ours = git_state(Path(__file__).resolve().parent)
        accepted = []
        for node_id, f in facts.items():
            reason = refusal(f, ours)
            self.nodes.append({"node_id": node_id, **f, "refused": reason})
            if reason:
                self.console.print(f"[red]refusing node {f['ip']} ({f['hostname']})[/]: {reason}")
                continue
            accepted.append(Node(node_id, f"{f['hostname']} {f['ip']}", host_key(f)))
        if not accepted:
            raise ClusterError("every bench node was refused (see above); nothing can run")
        shared = {n.host for n in accepted if sum(m.host == n.host for m in accepted) > 1}
        if shared:
            how = ("running one unit per node anyway (--allow-shared-host): their rows are flagged"
                   if self.allow_shared_host else "running one unit per host at a time")
            self.console.print(f"[yellow]{len(shared)} host(s) hold several bench nodes[/]: {how}")
        return accepted

    def _dispatch(self, ray: Any, dispatch: Dispatch) -> None:
        remote = ray.remote(run_unit_here)
        profiles = (self.config.extra_profiles.read_text()
                    if self.config.extra_profiles is not None else None)
        config_ref = ray.put(self.config)
        in_flight: dict[Any, Attempt] = {}
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=False) as progress:
            total = progress.add_task("units", total=len(dispatch.states))
            bars = {n.node_id: progress.add_task(f"{n.label}: idle", total=None)
                    for n in dispatch.nodes}
            while True:
                for attempt in dispatch.next_attempts(time.monotonic()):
                    ref = remote.options(
                        num_cpus=0, resources={RESOURCE: 1}, max_retries=0,
                        scheduling_strategy=_pinned(ray, attempt.node.node_id),
                    ).remote(config_ref, attempt.unit, profiles)
                    in_flight[ref] = attempt
                    progress.update(bars[attempt.node.node_id],
                                    description=f"{attempt.node.label}: {attempt.unit.label}")
                if not in_flight:
                    break
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    attempt = in_flight.pop(ref)
                    self._collect(ray, dispatch, attempt, ref)
                    progress.update(bars[attempt.node.node_id],
                                    description=f"{attempt.node.label}: idle")
                    progress.update(bars[attempt.node.node_id], advance=int(
                        attempt.outcome == "measured"))
                    settled = sum(s.outcome is not None for s in dispatch.states.values())
                    progress.update(total, completed=settled)

    def _collect(self, ray: Any, dispatch: Dispatch, attempt: Attempt, ref: Any) -> None:
        now = time.monotonic()
        label = f"{attempt.unit.label} on {attempt.node.label}"
        try:
            records: UnitRecords = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            message = _error_text(exc)
            dispatch.failed(attempt, now, message, node_lost=False)
            self.console.print(f"[red]unit failed[/] {label}: {message}")
            return
        except ray.exceptions.RayError as exc:
            name = type(exc).__name__
            if name not in _LOST:
                raise
            message = _error_text(exc)
            dispatch.failed(attempt, now, message, node_lost=True,
                            node_dead=name in _NODE_DEAD)
            again = dispatch.states[attempt.unit].outcome is None
            self.console.print(f"[yellow]node lost[/] during {label}: {message}"
                               + ("; retrying on another node" if again else ""))
            return
        dispatch.finished(attempt, now)
        shared = dispatch.states[attempt.unit].shared_host
        for extra in records.extras.values():
            extra["node"] = attempt.node.label
            extra["shared_host"] = shared
        stack = self.results[run_key(attempt.unit.client, attempt.unit.stack)]
        stack.open()
        records.replay(stack)
        timings = dict(records.timings)
        timings["driver_s"] = now - attempt.submitted
        # What the cluster added: dispatch, worker start-up, moving the records back.
        timings["overhead_s"] = timings["driver_s"] - timings.get("unit_s", 0.0)
        self.timings[attempt.unit] = timings

    def _metadata(self, dispatch: Dispatch | None) -> dict[str, Any]:
        units = dispatch.to_dict() if dispatch is not None else []
        if dispatch is not None:
            for entry, state in zip(units, dispatch.states.values(), strict=True):
                entry["timings"] = {k: round(v, 3)
                                    for k, v in self.timings.get(state.unit, {}).items()}
        overheads = sorted(t["overhead_s"] for t in self.timings.values() if "overhead_s" in t)
        return {"cluster": {
            "address": self.address,
            "resource": RESOURCE,
            "allow_shared_host": self.allow_shared_host,
            "shared_hosts": sorted(dispatch.shared_hosts) if dispatch else [],
            "retries_allowed": self.retries,
            "retried": dispatch.retried() if dispatch else 0,
            "overhead_s": {
                "median": statistics.median(overheads) if overheads else None,
                "max": overheads[-1] if overheads else None,
            },
            "nodes": self.nodes,
            "units": units,
        }}


def run_cluster_bench(
    config: BenchConfig, address: str, *, allow_shared_host: bool = False, retries: int = 2,
    console: Console | None = None,
) -> dict[str, RunResults]:
    """Run every unit of ``config`` on the Ray cluster at ``address``; write all outputs."""
    return ClusterRun(config, address, allow_shared_host=allow_shared_host, retries=retries,
                      console=console).run()
