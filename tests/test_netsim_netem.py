"""The optional netem backend: detection, and a profile as tc commands."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from cloudarcade.netsim import get_profile
from cloudarcade.netsim.netem import netem_commands, netem_status


def _config(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "config.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(f"CONFIG_NET_SCHED=y\n{line}\n")
    return path


def test_detection_reads_the_kernel_config(tmp_path: Path) -> None:
    no_modules = tmp_path / "modules"
    no_modules.write_text("")
    off = netem_status(_config(tmp_path, "# CONFIG_NET_SCH_NETEM is not set"), no_modules)
    assert not off.available and "built without netem" in off.reason
    on = netem_status(_config(tmp_path, "CONFIG_NET_SCH_NETEM=m"), no_modules)
    assert on.available and "CONFIG_NET_SCH_NETEM=m" in on.reason


def test_profiles_become_tc_commands_or_say_why_not() -> None:
    (cmd,) = netem_commands(get_profile("5g-sa"), "veth0")
    assert cmd[:7] == ["tc", "qdisc", "replace", "dev", "veth0", "root", "netem"]
    assert cmd[7:] == ["delay", "4ms", "1ms", "30%", "rate", "220mbit"]
    with pytest.raises(ValueError, match="traces and outages have no netem equivalent"):
        netem_commands(get_profile("lte"))
