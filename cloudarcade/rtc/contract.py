"""What cloudarcade relies on inside aiortc and aioice, checked before it is used.

The seams in :mod:`cloudarcade.rtc.seam` replace or wrap private methods of
aiortc objects per instance and read some of their private state; ICE set-up
replaces one aioice function. All of it was written against exactly the
versions below. :func:`check_versions` and :func:`require` turn a moved pin or
a renamed attribute into one clear error at install time, instead of a
receive path that silently stops working. ``tests/test_rtc_contract.py`` fails
when ``pyproject.toml``'s pins and these disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import metadata
from types import ModuleType

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

# Private members per aiortc class, by the name they have on an instance
# (name-mangled where aiortc uses double underscores).
RECEIVER_ATTRIBUTES = (
    "_enabled",
    "_handle_rtp_packet",
    "_send_rtcp",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__active_ssrc",
    "_RTCRtpReceiver__rtcp_ssrc",
)
SENDER_ATTRIBUTES = ("_handle_rtcp_packet", "_ssrc")
TRANSPORT_ATTRIBUTES = ("_send_rtp", "_handle_rtcp_data")
# The transport's RTP router (its register_receiver is public on a private object):
# the client registers FEC parity's SSRC and payload type with it.
ROUTER_ATTRIBUTES = ("_rtp_router",)
TRANSCEIVER_ATTRIBUTES = ("_headerExtensions",)
# Module-level names: (module, attribute).
MODULE_ATTRIBUTES = (
    ("aioice.ice", "get_host_addresses"),
    ("aiortc.rtcrtpreceiver", "StreamStatistics"),
    ("aiortc.rate", "RemoteBitrateEstimator"),
    ("aiortc.rtp", "unwrap_rtx"),
    ("aiortc.rtp", "pack_header_extensions"),
    ("aiortc.rtp", "unpack_header_extensions"),
    ("aiortc.sdp", "SessionDescription"),
)


class AiortcContractError(RuntimeError):
    """The installed aiortc/aioice is not the one cloudarcade's seams were written for."""


def check_versions() -> None:
    """Raise :class:`AiortcContractError` unless the pinned aiortc and aioice are installed."""
    for package, pinned in (("aiortc", AIORTC_VERSION), ("aioice", AIOICE_VERSION)):
        installed = metadata.version(package)
        if installed != pinned:
            raise AiortcContractError(
                f"{package} {installed} is installed but cloudarcade's aiortc seams were written "
                f"for {package} {pinned}; install {package}=={pinned} or re-check "
                f"cloudarcade/rtc/contract.py against the new version (docs/aiortc.md)"
            )


def require(obj: object, names: Iterable[str]) -> None:
    """Raise :class:`AiortcContractError` naming every attribute ``obj`` lacks."""
    missing = [name for name in names if not hasattr(obj, name)]
    if missing:
        owner = (obj.__name__ if isinstance(obj, ModuleType)
                 else f"{type(obj).__module__}.{type(obj).__qualname__}")
        raise AiortcContractError(
            f"{owner} has no {', '.join(missing)}; "
            f"cloudarcade's seam expects aiortc {AIORTC_VERSION} (see docs/aiortc.md)"
        )


def check_modules() -> None:
    """Raise :class:`AiortcContractError` if a module-level name we use is gone."""
    import importlib

    for module_name, name in MODULE_ATTRIBUTES:
        require(importlib.import_module(module_name), (name,))


@functools.cache
def check() -> None:
    """Versions and module-level names (once per process); the per-instance checks run
    in each seam."""
    check_versions()
    check_modules()
