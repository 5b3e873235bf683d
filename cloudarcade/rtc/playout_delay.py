"""The playout-delay RTP header extension, and the step that writes it.

``http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`` (WebRTC's
experimental extension, used by cloud-gaming services): the sender tells the
receiver the smallest and largest delay it may add before rendering, 12 bits
each in 10 ms units. ``min = max = 0`` puts Chromium's receiver on its
render-as-soon-as-decoded path: no jitter-buffer target, frames go to the
decoder when complete and to the compositor when decoded.

The tuned stack negotiates it (Chromium offers it) and writes it on every
video packet it sends; the stock stack does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cloudarcade.rtc.extensions import PLAYOUT_DELAY
from cloudarcade.rtc.packet import OutgoingRtp
from cloudarcade.rtc.seam import TransportStep

URI: Final = PLAYOUT_DELAY
UNIT_MS: Final = 10
MAX_UNITS: Final = 0xFFF


@dataclass(frozen=True)
class PlayoutDelay:
    """Minimum and maximum playout delay, in milliseconds (multiples of 10, ≤ 40950)."""

    min_ms: int = 0
    max_ms: int = 0

    def __post_init__(self) -> None:
        for name, value in (("min_ms", self.min_ms), ("max_ms", self.max_ms)):
            if value % UNIT_MS or not 0 <= value // UNIT_MS <= MAX_UNITS:
                raise ValueError(f"playout delay {name}: expected a multiple of {UNIT_MS} ms "
                                 f"in 0..{MAX_UNITS * UNIT_MS}, got {value}")
        if self.min_ms > self.max_ms:
            raise ValueError(f"playout delay: min_ms {self.min_ms} > max_ms {self.max_ms}")

    def __bytes__(self) -> bytes:
        word = (self.min_ms // UNIT_MS) << 12 | (self.max_ms // UNIT_MS)
        return word.to_bytes(3, "big")

    @classmethod
    def parse(cls, data: bytes) -> PlayoutDelay:
        if len(data) != 3:
            raise ValueError(f"playout delay extension of {len(data)} bytes; expected 3")
        word = int.from_bytes(data, "big")
        return cls(min_ms=(word >> 12) * UNIT_MS, max_ms=(word & MAX_UNITS) * UNIT_MS)


class PlayoutDelayStep(TransportStep):
    """Writes ``delay`` as extension ``extension_id`` on every outgoing RTP packet."""

    def __init__(self, extension_id: int, delay: PlayoutDelay | None = None) -> None:
        self.extension_id = extension_id
        self.value = bytes(delay or PlayoutDelay())
        self.written = 0

    def send(self, packet: OutgoingRtp, now: float) -> float | None:
        packet.set_extension(self.extension_id, self.value)
        self.written += 1
        return None
