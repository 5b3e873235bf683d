"""The optional ``tc netem`` backend: detection, and a profile as ``tc`` commands.

netem is the kernel's own impairment qdisc. Where the kernel has it (not on
the machines this project is developed on: ``CONFIG_NET_SCH_NETEM`` is not
set), ``cloudarcade netsim --backend netem`` prints the commands that apply a
profile's downlink to a device; applying them needs root and changes every
packet on that device, so the command only prints them. The user-space relay
stays the default and needs neither.
"""

from __future__ import annotations

import gzip
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from .profile import LinkSpec, Profile

logger = logging.getLogger(__name__)

BACKENDS = ("relay", "netem")

_CONFIG = Path("/proc/config.gz")
_MODULES = Path("/proc/modules")


@dataclass(frozen=True)
class NetemStatus:
    available: bool
    reason: str


def netem_status(config: Path = _CONFIG, modules: Path = _MODULES) -> NetemStatus:
    """Whether this machine has ``tc`` and a kernel with netem, and if not, why."""
    if shutil.which("tc") is None:
        return NetemStatus(False, "the `tc` command is missing (Debian package iproute2)")
    if modules.exists() and "sch_netem" in modules.read_text():
        return NetemStatus(True, "sch_netem is loaded")
    if config.exists():
        with gzip.open(config, "rt") as fh:
            for line in fh:
                if line.startswith("CONFIG_NET_SCH_NETEM="):
                    return NetemStatus(True, f"the kernel has {line.strip()}")
        return NetemStatus(False, f"this kernel was built without netem "
                                  f"(CONFIG_NET_SCH_NETEM is not set in {config})")
    return NetemStatus(False, f"cannot tell whether the kernel has netem ({config} is missing)")


def _loss(spec: LinkSpec) -> list[str]:
    loss = spec.loss
    model = loss.get("model", "none")

    def pct(key: str, default: float = 0.0) -> str:
        return f"{100 * float(loss.get(key, default)):g}%"

    if model == "none":
        return []
    if model == "bernoulli":
        return ["loss", "random", pct("p")]
    if model == "gilbert-elliott":
        return ["loss", "gemodel", pct("p"), pct("r"), pct("loss_bad", 1.0), pct("loss_good")]
    if model == "4state":
        return ["loss", "state", pct("p13"), pct("p31", 1 - float(loss.get("p13", 0))),
                pct("p32"), pct("p23", 1.0), pct("p14")]
    raise ValueError(f"loss model {model!r} has no netem equivalent; known: none, bernoulli, "
                     "gilbert-elliott, 4state")


def netem_commands(profile: Profile, device: str = "lo") -> list[list[str]]:
    """``tc`` argument lists that give ``device`` the profile's downlink.

    netem shapes egress only; the uplink needs a second device (an ifb or the
    other end of a veth pair) with the same commands for ``profile.uplink``.
    Trace links and outages have no netem equivalent: ValueError names them.
    """
    spec = profile.downlink
    if spec.trace is not None or spec.outages or spec.random_outages is not None:
        raise ValueError(f"profile {profile.name!r}: traces and outages have no netem equivalent")
    if spec.delay_file is not None or spec.distribution not in ("constant", "uniform", "normal",
                                                                "pareto"):
        raise ValueError(f"profile {profile.name!r}: delay distribution {spec.distribution!r} "
                         "has no netem equivalent; known: constant, uniform, normal, pareto")
    args = ["tc", "qdisc", "replace", "dev", device, "root", "netem",
            "delay", f"{spec.delay_ms:g}ms"]
    if spec.jitter_ms > 0:
        args.append(f"{spec.jitter_ms:g}ms")
        if spec.correlation:
            args.append(f"{100 * spec.correlation:g}%")
        if spec.distribution in ("normal", "pareto"):
            args += ["distribution", spec.distribution]
    args += _loss(spec)
    if spec.rate_mbps is not None:
        args += ["rate", f"{spec.rate_mbps:g}mbit"]
    if spec.reorder:
        logger.info("netem reorders on its own when jitter exceeds the packet gap")
    packets = spec.queue.get("packets")
    if isinstance(packets, int):
        args += ["limit", str(packets)]
    return [args]
