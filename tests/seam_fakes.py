"""A stand-in for the DTLS transport under a TransportSeam, for unit tests of send steps."""

from __future__ import annotations


class RecordingTransport:
    """Only the two methods TransportSeam wraps; what is sent is kept in ``out``."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.out.append(data)

    async def _handle_rtcp_data(self, data: bytes) -> None:
        pass
