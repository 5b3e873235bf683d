"""Media stacks: the one place that says how a stack encodes, sends and receives.

A :class:`MediaStack` makes, for the server, the session's frame sink (who
encodes) and each viewer's video track (who paces), and names the RTP steps
and header extensions it adds on the seams of :mod:`cloudarcade.rtc`; for the
Python client it makes the video receive path. Sessions, viewers and the
headless client ask their stack and never branch on its name. Stacks are
chosen by name with :func:`create_stack`, as aioquic picks congestion
control; a new stack (one with congestion control, say) is one class added
to this file's registry.

Server and client parts import lazily, so that a client process does not load
the renderer and a server does not load the decoder.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from aiortc import RTCPeerConnection, RTCRtpTransceiver

from cloudarcade.rtc.extensions import PLAYOUT_DELAY, TRANSPORT_CC
from cloudarcade.rtc.seam import RtcpStep, TransportStep

if TYPE_CHECKING:
    from cloudarcade.cc import CcState
    from cloudarcade.client.receiver import OnFrame, VideoReceive
    from cloudarcade.encoder import EncodedFrame
    from cloudarcade.protocol import FrameTiming
    from cloudarcade.server.congestion import ViewerCongestion
    from cloudarcade.server.options import SessionOptions
    from cloudarcade.server.sinks import Deliver, FrameSink, OnDrop
    from cloudarcade.server.tracks import ViewerTrack


class MediaStack(abc.ABC):
    """How one stack encodes, sends and receives video."""

    name: ClassVar[str]
    #: RTP header extension URIs this stack negotiates on its transceivers,
    #: beyond aiortc's own (see :mod:`cloudarcade.rtc.extensions`).
    header_extensions: ClassVar[tuple[str, ...]] = ()

    # Server side.
    @abc.abstractmethod
    def create_sink(
        self,
        options: SessionOptions,
        deliver: Deliver,
        on_drop: OnDrop,
        on_encoded: Callable[[EncodedFrame], None],
        link_full: Callable[[], bool] | None = None,
    ) -> FrameSink:
        """Where the session's rendered frames go; ``deliver`` fans them out to viewers.

        ``link_full`` (when given) says the viewers' senders are backed up: a
        sink that encodes skips the frame instead.
        """

    @abc.abstractmethod
    def create_track(
        self, *, on_sent: Callable[[FrameTiming], None], on_overflow: Callable[[int], None]
    ) -> ViewerTrack:
        """One viewer's video track, fed with what the sink delivers."""

    def rtcp_steps(self) -> list[RtcpStep]:
        """Steps for the RTCP a viewer's sender receives, after the viewer's own."""
        return []

    def transport_steps(self, extension_ids: Mapping[str, int]) -> list[TransportStep]:
        """Steps for a viewer's outgoing RTP; ``extension_ids`` are the negotiated ids by URI."""
        return []

    def create_congestion(
        self, options: SessionOptions, on_update: Callable[[CcState], None]
    ) -> ViewerCongestion | None:
        """A viewer's congestion control (``options.cc``), or None where the stack has none."""
        return None

    # Client side.
    def client_offer(self, sdp: str) -> str:
        """The Python client's offer SDP with what this stack asks for beyond aiortc's."""
        return sdp

    @abc.abstractmethod
    def create_receiver(
        self, pc: RTCPeerConnection, transceiver: RTCRtpTransceiver, on_frame: OnFrame
    ) -> VideoReceive:
        """The Python client's receive path for ``transceiver`` (before the offer is made)."""


class TunedStack(MediaStack):
    """Ours: our encoder on its own thread, packets paced by the game tick, our receive path,
    and congestion control (``--cc``, :mod:`cloudarcade.cc`) steering the encoder."""

    name = "tuned"
    # Transport-wide sequence numbers: the congestion controller's feedback.
    # playout-delay min = max = 0: Chromium renders our frames as soon as they decode.
    header_extensions = (TRANSPORT_CC, PLAYOUT_DELAY)

    def transport_steps(self, extension_ids: Mapping[str, int]) -> list[TransportStep]:
        from cloudarcade.rtc.playout_delay import PlayoutDelayStep

        if PLAYOUT_DELAY not in extension_ids:
            return []  # the client did not offer it (aiortc's own client does not)
        return [PlayoutDelayStep(extension_ids[PLAYOUT_DELAY])]

    def create_sink(
        self,
        options: SessionOptions,
        deliver: Deliver,
        on_drop: OnDrop,
        on_encoded: Callable[[EncodedFrame], None],
        link_full: Callable[[], bool] | None = None,
    ) -> FrameSink:
        from cloudarcade.encoder import create_encoder
        from cloudarcade.server.sinks import EncoderSink

        encoder = create_encoder(options.codec, options.encoder_config())
        return EncoderSink(encoder, deliver, on_drop, on_encoded, skip_frame=link_full)

    def create_congestion(
        self, options: SessionOptions, on_update: Callable[[CcState], None]
    ) -> ViewerCongestion | None:
        from cloudarcade.server.congestion import ViewerCongestion

        return ViewerCongestion(options, on_update)

    def create_track(
        self, *, on_sent: Callable[[FrameTiming], None], on_overflow: Callable[[int], None]
    ) -> ViewerTrack:
        from cloudarcade.server.tracks import PacketTrack

        return PacketTrack(on_sent=on_sent, on_overflow=on_overflow)

    def client_offer(self, sdp: str) -> str:
        from cloudarcade.rtc import fec_sdp

        return fec_sdp.add_to_offer(sdp)  # FEC parity, docs/fec.md

    def create_receiver(
        self, pc: RTCPeerConnection, transceiver: RTCRtpTransceiver, on_frame: OnFrame
    ) -> VideoReceive:
        from cloudarcade.client.receiver import TunedVideoReceiver

        receiver = TunedVideoReceiver.for_frames(transceiver.receiver, on_frame)
        receiver.install()
        return receiver


class StockStack(MediaStack):
    """The baseline: aiortc's own encoder, 30 fps pacing and jitter buffer, unchanged."""

    name = "stock"

    def create_sink(
        self,
        options: SessionOptions,
        deliver: Deliver,
        on_drop: OnDrop,
        on_encoded: Callable[[EncodedFrame], None],
        link_full: Callable[[], bool] | None = None,
    ) -> FrameSink:
        from cloudarcade.server.sinks import RawSink

        return RawSink(deliver, on_drop)

    def create_track(
        self, *, on_sent: Callable[[FrameTiming], None], on_overflow: Callable[[int], None]
    ) -> ViewerTrack:
        from cloudarcade.server.tracks import StockTrack

        return StockTrack(on_sent=on_sent)

    def create_receiver(
        self, pc: RTCPeerConnection, transceiver: RTCRtpTransceiver, on_frame: OnFrame
    ) -> VideoReceive:
        from cloudarcade.client.receiver import StockVideoReceiver

        return StockVideoReceiver(pc, on_frame)


STACKS: dict[str, type[MediaStack]] = {stack.name: stack for stack in (TunedStack, StockStack)}


def create_stack(name: str) -> MediaStack:
    """The stack called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return STACKS[name]()
    except KeyError:
        raise ValueError(f"unknown stack {name!r}; expected one of {', '.join(STACKS)}") from None
