"""What runs on a cluster node: its facts, its requirements check, and one unit.

Nothing here imports Ray: :mod:`cloudarcade.bench.cluster` wraps these
functions in Ray tasks. A unit on a node starts its own server (a
subprocess, as in a local run), measures with the same
:func:`cloudarcade.bench.runner.measure_unit`, and returns its records whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from cloudarcade import runtime
from cloudarcade.bench.metadata import git_state, machine, versions
from cloudarcade.bench.scenario import BenchConfig
from cloudarcade.bench.unit import Unit, UnitRecords
from cloudarcade.client.headless import ClientError

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class UnitRequirementError(RuntimeError):
    """The node lacks something the unit needs; the message names it and the node."""


def boot_id() -> str | None:
    """This boot of the kernel: two nodes with the same hostname and boot id share a host."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def node_facts() -> dict[str, Any]:
    """Hostname, boot id, CPU, versions and git revision of the machine this runs on."""
    facts = machine()
    facts["hostname"] = socket.gethostname()
    facts["boot_id"] = boot_id()
    facts["versions"] = versions()
    facts["git"] = git_state(Path(__file__).resolve().parent)
    facts["chromium"] = chromium_found()
    facts["pid"] = os.getpid()
    return facts


def host_key(facts: dict[str, Any]) -> str:
    """Nodes with the same key share one machine (and so its cores).

    The boot id is the kernel's: containers on one machine have their own
    hostnames but share it. The hostname is the fallback where there is none.
    """
    boot = facts.get("boot_id")
    return f"boot:{boot}" if boot else f"host:{facts.get('hostname')}"


def missing_requirements(client: str) -> list[str]:
    """What this node lacks to measure with ``client`` (bench/clients.py), each as a
    sentence naming it and how to get it; empty when it has it all."""
    if client != "chromium":
        return []
    # The same checks as the chromium client's own (Playwright, then the executable
    # at CLOUDARCADE_CHROMIUM or /usr/bin/chromium), made before a server starts.
    try:
        from cloudarcade.bench.chromium_client import chromium_path
    except ImportError as exc:
        return [f"the chromium client needs Playwright ({exc}): pip install playwright"]
    try:
        chromium_path()
    except ClientError as exc:
        return [str(exc)]
    return []


def chromium_found() -> str | None:
    """Where this node's Chromium is (for its facts), or None."""
    try:
        from cloudarcade.bench.chromium_client import chromium_path

        return chromium_path()
    except (ImportError, ClientError):
        return None


def refusal(facts: dict[str, Any], driver_git: dict[str, Any]) -> str | None:
    """Why a node must not measure for this driver (another code revision), or None."""
    ours, theirs = driver_git.get("revision"), facts.get("git", {}).get("revision")
    if ours != theirs:
        return (f"git revision {theirs or 'unknown'} differs from the driver's "
                f"{ours or 'unknown'}; check out the same revision on every node")
    return None


def run_unit_here(
    config: BenchConfig, unit: Unit, profiles_toml: str | None = None
) -> UnitRecords:
    """Measure ``unit`` on this machine with a server of its own; the records, whole.

    ``profiles_toml``: the text of the run's extra profiles file (the driver's
    path means nothing here). Raises :class:`UnitRequirementError` when this
    node lacks something the unit needs.
    """
    facts = node_facts()
    missing = missing_requirements(unit.client)
    if missing:
        raise UnitRequirementError(
            f"node {facts['hostname']} cannot run {unit.label}: {'; '.join(missing)}"
        )
    with tempfile.TemporaryDirectory(prefix="cloudarcade-unit-") as tmp:
        extra = None
        if profiles_toml is not None:
            extra = Path(tmp) / "profiles.toml"
            extra.write_text(profiles_toml)
        local = dataclasses.replace(config, out=Path(tmp), metrics_port=None,
                                    extra_profiles=extra)
        records = UnitRecords(unit, node=facts)
        # No signal handlers (runtime.run would take SIGTERM from Ray's worker).
        with asyncio.Runner(loop_factory=runtime.loop_factory()) as loop:
            loop.run(_measure(local, unit, records))
    return records


async def _measure(config: BenchConfig, unit: Unit, records: UnitRecords) -> None:
    from cloudarcade.bench.runner import measure_unit, server_args
    from cloudarcade.bench.server_process import ServerProcess

    started = time.monotonic()
    server = ServerProcess(args=server_args(config), log_path=config.out / "server.log")
    try:
        url = await server.start()
        ready = time.monotonic()
        await measure_unit(config, unit, url, records, lambda: None)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await server.stop()
    records.timings = {"server_start_s": ready - started, "measure_s": time.monotonic() - ready,
                       "unit_s": time.monotonic() - started}
