"""The clients of a capacity step as Ray tasks on other machines (``--cluster``).

On one machine the clients steal the server's cores; spread over other nodes
they do not, and the ramp measures the server alone. Each client is a Ray task
running :func:`cloudarcade.bench.capacity_client.measure_session`; a small
Ray actor (:class:`Gate`) holds them at the starting line until all are
ready. Clients go round-robin to the nodes that are not on the server's
machine (all nodes with ``allow_shared_host``), whatever their resources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from cloudarcade import runtime
from cloudarcade.bench.capacity import CapacityConfig
from cloudarcade.bench.capacity_client import CONNECT_TIMEOUT, measure_session
from cloudarcade.bench.cluster import ClusterError, probe_nodes, ray_init
from cloudarcade.bench.metadata import git_state
from cloudarcade.bench.node import host_key, node_facts, refusal
from cloudarcade.client.headless import ClientError, ClientOptions

logger = logging.getLogger(__name__)


class Gate:
    """A starting line (used as a Ray actor): counts arrivals, opens once."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._counts: dict[str, int] = {}

    def arrive(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)

    def open(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


def client_task(
    options: ClientOptions, warmup: float, duration: float, gate: Any
) -> dict[str, Any]:
    """One client, in a Ray worker: the window's figures, or ``{"error": ...}``."""

    async def go() -> None:
        await gate.wait.remote()

    def on_event(name: str, **_: Any) -> None:
        gate.arrive.remote(name)

    with asyncio.Runner(loop_factory=runtime.loop_factory()) as runner:
        try:
            return runner.run(measure_session(options, warmup=warmup, duration=duration,
                                              go=go, on_event=on_event))
        except (ClientError, OSError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}


class RayClients:
    """Clients as Ray tasks, spread over the nodes not on this machine."""

    def __init__(self, config: CapacityConfig, address: str, *,
                 allow_shared_host: bool = False) -> None:
        self.config = config
        ray = self._ray = ray_init(address)
        here = host_key(node_facts())
        ours = git_state(Path(__file__).resolve().parent)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        facts = probe_nodes(ray, nodes)
        self.nodes = [node_id for node_id, f in facts.items()
                      if refusal(f, ours) is None and (allow_shared_host or host_key(f) != here)]
        if not self.nodes:
            ray.shutdown()
            raise ClusterError("no node of the cluster is on another machine at the driver's git "
                               "revision; add one, or pass --allow-shared-host")
        self.where = f"Ray tasks on {len(self.nodes)} node(s)"
        self._refs: list[Any] = []
        self._gate: Any = None

    async def start(self, n: int, url: str) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray, config = self._ray, self.config
        self._gate = ray.remote(Gate).options(num_cpus=0).remote()
        task = ray.remote(client_task)

        def pinned(i: int) -> Any:
            strategy = NodeAffinitySchedulingStrategy(self.nodes[i % len(self.nodes)], soft=False)
            return task.options(num_cpus=0, max_retries=0, scheduling_strategy=strategy)

        self._refs = [
            pinned(i).remote(
                ClientOptions(url=url, game=config.game, resolution=config.resolution,
                              fps=config.fps, codec=config.codec, bitrate=config.bitrate,
                              input_seed=i + 1, connect_timeout=CONNECT_TIMEOUT),
                config.warmup, config.duration, self._gate)
            for i in range(n)
        ]
        await self._all("ready", 120.0)

    async def go(self) -> None:
        await self._gate.open.remote()
        await self._all("measuring", self.config.warmup + 30)

    async def _all(self, name: str, timeout: float) -> None:
        """Wait until every client said ``name`` or ended (a failure)."""
        deadline = time.monotonic() + timeout
        while True:
            arrived = await self._gate.count.remote(name)
            ended, _ = self._ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
            if arrived + len(ended) >= len(self._refs) or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.1)

    async def results(self) -> list[dict[str, Any]]:
        out = []
        for ref in self._refs:
            try:
                result = await asyncio.wait_for(ref, self.config.duration + 60)
            except Exception as exc:
                logger.warning("client task failed: %s", exc)
                continue
            if "error" in result:
                logger.warning("client failed: %s", result["error"])
            else:
                out.append(result)
        return out

    async def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs = []
        if self._gate is not None:
            self._ray.kill(self._gate)
            self._gate = None

    def disconnect(self) -> None:
        self._ray.shutdown()
