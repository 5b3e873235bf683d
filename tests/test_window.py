"""The desktop window client: key and pad mapping, layout, and a real stream (SDL dummy driver)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pygame
import pytest

from cloudarcade import protocol
from cloudarcade.client.client_thread import answer_codec
from cloudarcade.client.headless import ClientOptions
from cloudarcade.client.input_map import (
    KEY_CODES,
    SCANCODE_CODES,
    PadState,
    PadTracker,
    key_code,
    pad_state,
)
from cloudarcade.client.overlay import Counters, OverlayStats, StatsSampler, format_lines
from cloudarcade.client.window import (
    ESCAPE_HOLD,
    DesktopWindow,
    fit_rect,
    frame_surface,
    play_window,
    visible_size,
)
from cloudarcade.server.app import SESSIONS

from .conftest import RunningServer

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


# --- keys, pads, layout --------------------------------------------------------------


@pytest.mark.parametrize(("key", "code"), [
    (pygame.K_a, "KeyA"), (pygame.K_z, "KeyZ"), (pygame.K_0, "Digit0"), (pygame.K_9, "Digit9"),
    (pygame.K_UP, "ArrowUp"), (pygame.K_DOWN, "ArrowDown"), (pygame.K_LEFT, "ArrowLeft"),
    (pygame.K_RIGHT, "ArrowRight"), (pygame.K_SPACE, "Space"), (pygame.K_RETURN, "Enter"),
    (pygame.K_ESCAPE, "Escape"), (pygame.K_LSHIFT, "ShiftLeft"), (pygame.K_RCTRL, "ControlRight"),
    (pygame.K_QUOTE, "Quote"), (pygame.K_BACKQUOTE, "Backquote"), (pygame.K_KP_5, "Numpad5"),
    (pygame.K_F1, "F1"),
])
def test_key_names_follow_keyboard_event_code(key: int, code: str) -> None:
    assert key_code(key) == code


def test_scancode_wins_because_code_names_the_physical_key() -> None:
    # AZERTY: the key in QWERTY's Q position types "a"; KeyboardEvent.code says KeyQ.
    assert key_code(pygame.K_a, pygame.KSCAN_Q) == "KeyQ"
    # Synthetic events carry no (or an unknown) scancode: the key decides.
    assert key_code(pygame.K_UP, pygame.KSCAN_UNKNOWN) == "ArrowUp"
    assert key_code(pygame.K_PRINTSCREEN) is None


def test_every_key_name_is_a_valid_protocol_code() -> None:
    codes = set(KEY_CODES.values())
    assert codes == set(SCANCODE_CODES.values())
    assert len(KEY_CODES) == len(SCANCODE_CODES) == len(codes)  # no two keys share a name
    for i, code in enumerate(sorted(codes), start=1):
        event = protocol.KeyEvent(seq=i, ts=1.0, code=code, down=True)
        assert protocol.parse(protocol.encode(event)) == event


def test_pad_state_dead_zone_and_hat_as_dpad() -> None:
    state = pad_state([True, False], [0.05, -0.734, 1.00003], hat=(0, 1))
    assert state.axes == (0.0, -0.73, 1.0)
    assert state.buttons[:2] == (1.0, 0.0)
    assert state.buttons[12:16] == (1.0, 0.0, 0.0, 0.0)  # hat up is d-pad up
    assert pad_state([], [0.1, -0.1], hat=None) == PadState((), (0.0, 0.0))
    event = protocol.PadEvent(seq=1, ts=1.0, index=0, buttons=state.buttons, axes=state.axes)
    assert protocol.parse(protocol.encode(event)) == event


def test_pad_tracker_sends_only_changes_and_releases_a_removed_pad() -> None:
    pads = PadTracker()
    rest = PadState((0.0,), (0.0, 0.0))
    assert pads.update(0, rest) == rest
    assert pads.update(0, rest) is None
    held = PadState((1.0,), (0.0, -0.5))
    assert pads.update(0, held) == held
    assert pads.update(1, held) == held  # pads are tracked apart
    assert pads.forget(0) == PadState((0.0,), (0.0, 0.0))
    assert pads.forget(0) is None


def test_fit_rect_letterboxes_and_pillarboxes() -> None:
    assert fit_rect((640, 360), (640, 480)) == pygame.Rect(0, 60, 640, 360)
    assert fit_rect((640, 360), (1000, 360)) == pygame.Rect(180, 0, 640, 360)
    assert fit_rect((640, 360), (1280, 720)) == pygame.Rect(0, 0, 1280, 720)


def test_the_frame_code_strip_is_cut_from_the_picture() -> None:
    import av

    from cloudarcade import framecode

    surface = pygame.Surface((640, 360))
    surface.fill((128, 128, 128))
    framecode.write(surface, 4242, 17)
    rgb = pygame.surfarray.array3d(surface).transpose(1, 0, 2).copy()
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    assert framecode.read_from_frame(frame) == framecode.FrameCode(4242, 17)  # still read
    assert visible_size((640, 360)) == (640, 328) and visible_size((1280, 720)) == (1280, 704)
    picture = np.asarray(frame_surface(frame, (640, 328))[1]).astype(int)
    assert picture.shape == (328, 640, 3)
    # Only the grey below the strip is left, not its black and white blocks.
    assert np.abs(picture - 128).max() <= 8


def test_answer_codec_takes_the_first_video_payload() -> None:
    sdp = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
           "m=video 9 UDP/TLS/RTP/SAVPF 102 97\r\na=rtpmap:97 VP8/90000\r\n"
           "a=rtpmap:102 H264/90000\r\n")
    assert answer_codec(sdp) == "H264"
    assert answer_codec("v=0\r\n") is None


def test_overlay_rates_and_text() -> None:
    sampler = StatsSampler()
    assert sampler.rates(10.0, Counters(0, 0, 0, 0, 0, 0)) == (0.0, 0.0)
    assert sampler.rates(10.5, Counters(15, 14, 100, 1, 0, 0)) == (30.0, 28.0)
    stock = StatsSampler()
    stock.rates(1.0, Counters(None, 0, None, None, None, None))
    assert stock.rates(2.0, Counters(None, 30, None, None, None, None)) == (None, 30.0)
    text = "\n".join(format_lines(OverlayStats(
        fps_received=30.0, fps_decoded=29.5, frame_latency_p50=12.34, decode_p50=1.2,
        display_p50=None, input_to_photon_p50=None, packets=10, nacks=2, plis=1,
        frames_skipped=0, resolution=(640, 360), codec="H264",
    )))
    for part in ("received 30.0", "decoded 29.5", "p50 12.3 ms", "NACKs 2", "PLIs 1",
                 "skipped 0", "640x360", "H264", "display -"):
        assert part in text


# --- a real server, a real window ------------------------------------------------------


class VirtualPad:
    """A virtual joystick in pygame's own SDL (SDL_JoystickAttachVirtual, SDL >= 2.0.14).

    Call its methods on the window's thread (``call_in_window``). SDL drops pad
    input while no window has keyboard focus, which under the dummy video
    driver is always: the test sets SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS.
    """

    def __init__(self) -> None:
        here = Path(pygame.__file__).resolve().parent
        bundled = sorted((here.parent / "pygame.libs").glob("libSDL2-2*.so*"))
        found = str(bundled[0]) if bundled else ctypes.util.find_library("SDL2")
        assert found, "pygame's SDL2 library not found"
        self.sdl = ctypes.CDLL(found)
        self.sdl.SDL_JoystickOpen.restype = ctypes.c_void_p
        self.sdl.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
        self.sdl.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                                        ctypes.c_int16]
        self.device = -1
        self.joystick: int | None = None

    def attach(self) -> None:
        self.device = self.sdl.SDL_JoystickAttachVirtual(0, 2, 4, 0)  # 2 axes, 4 buttons
        assert self.device >= 0, "SDL_JoystickAttachVirtual failed"
        self.joystick = self.sdl.SDL_JoystickOpen(self.device)  # our own reference
        assert self.joystick, "SDL_JoystickOpen failed"

    def axis(self, axis: int, value: int) -> None:
        assert self.sdl.SDL_JoystickSetVirtualAxis(self.joystick, axis, value) == 0

    def detach(self) -> None:
        self.sdl.SDL_JoystickClose(self.joystick)
        assert self.sdl.SDL_JoystickDetachVirtual(self.device) == 0


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _key(kind: int, key: int) -> None:
    pygame.event.post(pygame.event.Event(kind, key=key, mod=0, unicode="", scancode=0))


@pytest.mark.slow
async def test_window_shows_the_stream_and_forwards_keys(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")  # see VirtualPad
    options = ClientOptions(url=server.url, game="pong", resolution="640x360", fps=30,
                            bitrate="1M")
    # 4:3 window for a 16:9 stream: the picture is letterboxed.
    window = DesktopWindow(options, size=(640, 480))
    running = asyncio.ensure_future(asyncio.to_thread(window.run))
    try:
        await _until(lambda: window.frames_shown >= 5 or running.done(), 15, "frames shown")
        assert not running.done(), window.error
        sessions = server.app[SESSIONS]
        assert len(sessions) == 1
        session = next(iter(sessions.values()))

        def drawn(surface: pygame.Surface) -> tuple[Any, Any, pygame.Rect]:
            assert window.shown is not None and window.shown_rect is not None
            rect = window.shown_rect
            expected = np.asarray(frame_surface(window.shown.frame, rect.size)[1])
            return pygame.surfarray.array3d(surface).transpose(1, 0, 2), expected, rect

        pixels, expected, rect = await asyncio.wrap_future(window.call_in_window(drawn))
        # 640x360 less the frame code's 32-row strip, letterboxed in 640x480.
        assert rect == pygame.Rect(0, 76, 640, 328)
        assert not pixels[:76].any() and not pixels[404:].any()  # black bars
        video = pixels[76:404].astype(int)
        assert video.std() > 5  # a picture, not a flat fill
        assert np.abs(video - expected.astype(int)).max() <= 1  # the decoded frame, scaled

        # A key press reaches the game: player 0's paddle moves up while Up is held.
        y0 = session.game.paddle_y[0]
        _key(pygame.KEYDOWN, pygame.K_UP)
        _key(pygame.KEYDOWN, pygame.K_UP)  # a repeat: not sent again
        await _until(lambda: session.game.paddle_y[0] < y0 - 5, 5, "the paddle to move")
        _key(pygame.KEYUP, pygame.K_UP)
        await asyncio.wrap_future(window.call_in_window(lambda _: None))
        assert window._seq == 2  # one down, one up
        await _until(lambda: bool(window._input_to_photon), 5, "the key press on screen")
        # Losing focus releases what is held: the window never sees that key-up.
        controls = session.game.controls[0]
        _key(pygame.KEYDOWN, pygame.K_DOWN)
        await _until(lambda: "ArrowDown" in controls.keys, 5, "the held key to reach the game")
        pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
        await _until(lambda: "ArrowDown" not in controls.keys, 5, "the release on focus loss")
        assert window._seq == 4  # down, up, down, the release

        # A gamepad: a virtual SDL joystick (a real SDL device, driven through
        # SDL's own API) pushed up moves the paddle; unplugged, it is released.
        pad = VirtualPad()
        await asyncio.wrap_future(window.call_in_window(lambda _: pad.attach()))
        y0 = session.game.paddle_y[0]
        await asyncio.wrap_future(window.call_in_window(lambda _: pad.axis(1, -32768)))
        await _until(lambda: controls.pad_axes[1:2] == (-1.0,), 5, "the pad's stick in the game")
        await _until(lambda: session.game.paddle_y[0] < y0 - 5, 5, "the pad to move the paddle")
        await asyncio.wrap_future(window.call_in_window(lambda _: pad.detach()))
        await _until(lambda: not any(controls.pad_axes), 5, "the unplugged pad's release")
        assert window._input_to_photon[0] > 0  # measured; how fast is a benchmark's figure
        shown = list(window.displayed)
        assert all(d.photon >= d.decode_end for d in shown)
        ids = [d.frame_id for d in shown if d.frame_id is not None]
        assert len(ids) == len(shown) and ids == sorted(ids)  # codes read, frames in order

        # F1: the stats overlay, saved for a person to look at.
        _key(pygame.KEYDOWN, pygame.K_F1)
        await _until(lambda: window._panel is not None, 5, "the overlay")
        first = window._panel
        # A second sample, so that the rates on the panel are real.
        await _until(lambda: window._panel is not first, 5, "a second overlay sample")

        def screenshot(surface: pygame.Surface) -> Any:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            pygame.image.save(surface, str(SCREENSHOTS / "desktop.png"))
            return pygame.surfarray.array3d(surface).transpose(1, 0, 2)

        with_overlay = await asyncio.wrap_future(window.call_in_window(screenshot))
        assert with_overlay[8:40, 8:200].std() > 5  # text on the panel over the top bar

        # A tap of Escape goes to the game; holding it quits, cleanly.
        _key(pygame.KEYDOWN, pygame.K_ESCAPE)
        assert await asyncio.wait_for(asyncio.shield(running), ESCAPE_HOLD + 3) == 0
        assert window.error is None
    finally:
        window.stop()
        await running
    await _until(lambda: not server.app[SESSIONS], 5, "the session to close")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.slow
async def test_unreachable_server_exits_1_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert await asyncio.to_thread(play_window, ClientOptions(url=url), size=(320, 180)) == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.slow
async def test_refused_offer_exits_1_with_the_reason(server: RunningServer) -> None:
    window = DesktopWindow(ClientOptions(url=server.url, game="tetris"), size=(320, 180))
    assert await asyncio.to_thread(window.run) == 1
    assert window.error is not None and "known games" in window.error
