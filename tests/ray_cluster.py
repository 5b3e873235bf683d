"""A real local Ray cluster for tests and figures: a head and workers as `ray start` processes.

Each node listens on its own loopback address (127.0.0.2, 127.0.0.3, ...):
Ray replaces 127.0.0.1 by the machine's outside address, so the nodes use
other 127/8 addresses and every packet stays on loopback. Each node has the
``cloudarcade_bench`` resource. Nodes run ``ray start --block`` in their own
process group, which is what :meth:`LocalCluster.kill_node` and
:meth:`LocalCluster.stop` signal (never ``ray stop``, which stops every Ray
process on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
RESOURCE = "cloudarcade_bench"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class NodeProcess:
    ip: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class LocalCluster:
    address: str = ""
    nodes: list[NodeProcess] = field(default_factory=list)
    temp_dir: str = ""
    # Added to every node's environment (its Ray workers inherit it).
    env: dict[str, str] = field(default_factory=dict)

    def _start(self, ip: str, args: list[str], timeout: float) -> NodeProcess:
        log = Path(self.temp_dir) / f"node-{ip}.log"
        common = [f"--node-ip-address={ip}", f"--resources={json.dumps({RESOURCE: 1})}",
                  "--num-cpus=1", "--object-store-memory=78643200", "--disable-usage-stats",
                  "--block"]
        with log.open("wb") as out:
            process = subprocess.Popen([RAY, "start", *args, *common], stdout=out,
                                       stderr=subprocess.STDOUT, env={**ENV, **self.env},
                                       start_new_session=True)
        node = NodeProcess(ip, process, log)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in log.read_bytes():
            if not node.alive():
                raise RuntimeError(f"ray start {ip} exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray start {ip} not ready in {timeout} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return node

    def start_head(self, ip: str = "127.0.0.2", timeout: float = 60.0) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="ca-ray-")
        port = free_port(ip)
        self.address = f"{ip}:{port}"
        self._start(ip, ["--head", f"--port={port}", "--include-dashboard=false",
                         f"--temp-dir={self.temp_dir}"], timeout)

    def add_worker(self, ip: str, timeout: float = 60.0) -> NodeProcess:
        return self._start(ip, [f"--address={self.address}"], timeout)

    def pids(self, node: NodeProcess) -> list[int]:
        """The node's processes: ``ray start`` and all its descendants (raylet, workers,
        the servers they start), found through /proc. Ray starts its workers in
        process groups of their own, so the group alone is not enough."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found = {node.process.pid}
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in found} - found
            found |= more
            grew = bool(more)
        return sorted(found)

    def kill_node(self, node: NodeProcess) -> None:
        """SIGKILL every process of the node at once: a machine that died."""
        pids = self.pids(node)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.process.wait(timeout=10)

    def stop(self, grace: float = 1.0) -> None:
        """SIGTERM each node's group, SIGKILL what is left after ``grace`` s."""
        for node in reversed(self.nodes):
            if node.alive():
                try:
                    os.killpg(node.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + grace
        for node in reversed(self.nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if node.alive():
                self.kill_node(node)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)  # stragglers in the group
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
