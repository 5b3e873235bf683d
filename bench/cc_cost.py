"""What congestion control costs the server's event loop, per controller.

    python -m cloudarcade.bench.cc_cost --controllers none,gcc --seconds 10

Feeds the transport step (:class:`~cloudarcade.cc.steps.SendSideCongestion`)
the packets of ``--seconds`` of 60 fps video at ``--bitrate`` and our
client's transport-cc feedback for them (every 25 ms, 10 ms after sending),
on a fake clock, and prints the CPU time each controller took: per packet
sent, per feedback packet, and per second of video. No network, no
encoder: only the Python the server runs per packet and per feedback. A
benchmark command: it prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from cloudarcade.cc import CONTROLLERS, FeedbackGenerator, Pacer, PacketResult, create_controller
from cloudarcade.cc.steps import SendSideCongestion
from cloudarcade.rtc.packet import OutgoingRtp

_PAYLOAD = 1150
_FPS = 60
_ONE_WAY_S = 0.010


def _packets(count: int, per_frame: int) -> list[bytes]:
    extensions = HeaderExtensionsMap()
    out = []
    for i in range(count):
        packet = RtpPacket(payload_type=102, sequence_number=i % 65536, timestamp=i // per_frame,
                           ssrc=1)
        packet.marker = int(i % per_frame == per_frame - 1)
        packet.payload = bytes(_PAYLOAD)
        out.append(packet.serialize(extensions))
    return out


class Cost(NamedTuple):
    send_s: float  # CPU seconds in the step's send and sent
    feedback_s: float  # CPU seconds handling feedback
    packets: int
    feedbacks: int  # feedback packets handled
    reported: int  # packets the feedback resolved as received


def measure(name: str, bitrate: float, seconds: float) -> Cost:
    """Run ``seconds`` of video at ``bitrate`` through controller ``name``'s step."""
    controller = create_controller(name, initial=bitrate, min_rate=bitrate / 20,
                                   max_rate=bitrate)
    step = SendSideCongestion(controller, extension_id=5, on_update=lambda state: None,
                              pacer=None if name == "none" else Pacer(bitrate))
    generator = FeedbackGenerator(sender_ssrc=1, media_ssrc=1)
    reported = 0

    def count(results: list[PacketResult], now: float) -> None:
        nonlocal reported
        reported += sum(r.arrival is not None for r in results)

    step.on_results.append(count)
    per_frame = max(1, round(bitrate / _FPS / 8 / _PAYLOAD))
    raw = _packets(int(seconds * _FPS) * per_frame, per_frame)
    send_s = feedback_s = 0.0
    feedbacks = 0
    now = 1000.0
    for i, data in enumerate(raw):
        now += 1 / _FPS / per_frame
        packet = OutgoingRtp.parse(data)
        start = time.perf_counter()
        step.send(packet, now)
        step.sent(packet, len(data), now)
        send_s += time.perf_counter() - start
        assert packet.transport_sequence_number is not None
        generator.on_packet(packet.transport_sequence_number, now + _ONE_WAY_S)
        # After the last packet, the feedback that reports it is due one interval on.
        due = now + _ONE_WAY_S + (generator.interval if i == len(raw) - 1 else 0.0)
        for feedback in generator.feedback(due):
            rtcp = bytes(feedback)
            start = time.perf_counter()
            step.rtcp_received(rtcp, due + _ONE_WAY_S)
            feedback_s += time.perf_counter() - start
            feedbacks += 1
    return Cost(send_s, feedback_s, len(raw), feedbacks, reported)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", default="none,gcc",
                        help=f"comma-separated, of: {', '.join(sorted(CONTROLLERS))}")
    parser.add_argument("--bitrate", type=float, default=8_000_000, help="bits/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="of video")
    args = parser.parse_args()
    names = [n for n in args.controllers.split(",") if n]
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown or not names or args.seconds <= 0 or args.bitrate <= 0:
        parser.error(f"--controllers {args.controllers!r}: expected names from "
                     f"{', '.join(sorted(CONTROLLERS))}; --seconds and --bitrate > 0")
    for name in names:
        send_s, feedback_s, packets, feedbacks, _ = measure(name, args.bitrate, args.seconds)
        print(f"{name:6} {send_s / packets * 1e6:6.1f} us a packet, "
              f"{feedback_s / max(feedbacks, 1) * 1e6:6.0f} us a feedback packet "
              f"({feedbacks}), {(send_s + feedback_s) / args.seconds * 1e3:5.1f} ms of CPU "
              f"a second of video at {args.bitrate / 1e6:.1f} Mbit/s")


if __name__ == "__main__":
    main()
