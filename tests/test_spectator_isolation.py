"""Spectators watch, players play: real WebRTC on 127.0.0.1, the probe's marker read from pixels.

A spectator's key presses must never reach the game (the marker never flips,
and no frame carries an input of theirs); a player's press flips it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import av
import pytest

from cloudarcade import framecode
from cloudarcade.client.headless import ClientOptions, HeadlessClient
from cloudarcade.server.app import SESSIONS
from cloudarcade.server.games.probe import marker_state

from .conftest import RunningServer, settle

pytestmark = pytest.mark.slow


class MarkerWatcher(HeadlessClient):
    """A headless client that reads the probe's marker from every decoded frame."""

    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        # (marker: True white / False black, the frame's last applied input seq)
        self.seen: list[tuple[bool, int]] = []

    def on_decoded(self, frame: av.VideoFrame, code: framecode.FrameCode | None,
                   client: dict[str, float]) -> None:
        state = marker_state(framecode.luma_view(frame), frame.width, frame.height)
        if state is not None and code is not None:
            self.seen.append((state, code.input_seq))


async def _watch(clients: list[MarkerWatcher], frames: int, action: Callable[[], Any]) -> list[
        tuple[bool, int]]:
    """Run ``action``, then collect what every client sees over its next ``frames`` frames."""
    starts = [len(c.seen) for c in clients]
    action()
    pairs = list(zip(clients, starts, strict=True))
    assert await settle(lambda: all(len(c.seen) - s >= frames for c, s in pairs),
                        timeout=20), "frames stopped arriving"
    return [x for c, s in pairs for x in c.seen[s:]]


async def test_a_spectators_keys_never_reach_the_game_and_a_players_do(
    server: RunningServer,
) -> None:
    player = MarkerWatcher(ClientOptions(url=server.url, game="probe"))
    await player.connect()
    assert player.role == "player" and player.share
    spectator = MarkerWatcher(ClientOptions(url=server.url, join=player.share, role="spectator"))
    await spectator.connect()
    assert spectator.role == "spectator" and spectator.player is None
    clients = [player, spectator]
    try:
        assert await settle(lambda: bool(player.seen) and bool(spectator.seen), timeout=15)
        marker, seq = player.seen[-1]

        def spectator_presses() -> None:
            for _ in range(3):  # odd: had they reached the game, the marker would end flipped
                spectator.press("Space")

        # 30 frames (1 s at 30 fps) after the presses: loopback delivers them in milliseconds.
        seen = await _watch(clients, 30, spectator_presses)
        assert {m for m, _ in seen} == {marker}, "a spectator's key flipped the marker"
        assert {s for _, s in seen} == {seq}, "a frame applied a spectator's input"

        # The player's press does reach the game, and both see it.
        pressed = player.press("Space")
        assert await settle(lambda: any(m != marker and s >= pressed
                                        for m, s in player.seen[-5:]), timeout=10)
        assert await settle(lambda: spectator.seen[-1][0] != marker, timeout=10)

        seen = await _watch(clients, 30, spectator_presses)
        assert {m for m, _ in seen} == {not marker}, "a spectator's key flipped the marker"
        session = next(iter(server.app[SESSIONS].values()))
        assert len(session.viewers) == 2
    finally:
        for client in clients:
            await client.close()
    assert await settle(lambda: not server.app[SESSIONS])
