"""The aiortc/aioice contract: the pins, and every private member the seams use.

These fail when the pin in pyproject.toml moves without cloudarcade/rtc/contract.py
being re-checked against the new aiortc, or when aiortc renames what we rely on.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from cloudarcade.rtc import contract

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"(aiortc|aioice)==([\w.]+)", requirement)
        if match:
            pins[match[1]] = match[2]
    return pins


def test_pyproject_pins_are_the_versions_the_contract_was_checked_against() -> None:
    assert _pins() == {"aiortc": contract.AIORTC_VERSION, "aioice": contract.AIOICE_VERSION}
    contract.check()  # and they are what is installed


async def test_every_private_member_the_seams_use_exists() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        contract.require(transceiver.receiver, contract.RECEIVER_ATTRIBUTES)
        contract.require(transceiver.sender, contract.SENDER_ATTRIBUTES)
        contract.require(transceiver.sender.transport, contract.TRANSPORT_ATTRIBUTES)
        contract.require(transceiver.receiver.transport, contract.ROUTER_ATTRIBUTES)
        # FEC's ReceiverSeam.route calls the router's register_receiver.
        assert callable(transceiver.receiver.transport._rtp_router.register_receiver)
        contract.require(transceiver, contract.TRANSCEIVER_ATTRIBUTES)
    finally:
        await pc.close()


def test_a_moved_version_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract, "AIORTC_VERSION", "0.9.0")
    with pytest.raises(contract.AiortcContractError, match=r"written for aiortc 0\.9\.0"):
        contract.check_versions()


def test_a_missing_member_is_named() -> None:
    with pytest.raises(contract.AiortcContractError, match="has no _gone, _also_gone"):
        contract.require(object(), ("__class__", "_gone", "_also_gone"))
