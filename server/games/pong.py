"""``pong``: one player against an AI paddle, or two players.

Player 0 holds the left paddle. The right paddle is the AI's until player 1 sends
its first input, and then belongs to player 1. Controls: KeyW/KeyS or
ArrowUp/ArrowDown, pad axis 1 or d-pad buttons 12/13, or the pointer's y (the
paddle follows the pointer until a key or pad input takes over again).
"""

from __future__ import annotations

import logging
import math
import random
from typing import Final

import pygame

from cloudarcade.protocol import InputEvent, PointerEvent

from .base import Game, font

logger = logging.getLogger(__name__)

BACKGROUND: Final = (10, 14, 30)
FOREGROUND: Final = (235, 235, 235)
NET: Final = (90, 90, 110)
SERVE_DELAY: Final = 0.6
SPEEDUP: Final = 1.06
MAX_BOUNCE: Final = math.radians(60)
MAX_SERVE: Final = math.radians(30)


class Pong(Game):
    """Classic pong on the area below the frame-code band."""

    name = "pong"
    max_players = 2

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        super().__init__(width, height, seed)
        self._rng = random.Random(seed)
        field_h = height - self.top
        self.paddle_w = max(8, width // 80)
        self.paddle_h = max(24, field_h // 5)
        self.ball_size = max(8, height // 45)
        margin = max(16, width // 32)
        self.paddle_x = (margin, width - margin - self.paddle_w)
        self.paddle_speed = 1.5 * field_h
        self.ai_speed = 0.55 * self.paddle_speed
        self.base_speed = 0.55 * width
        self.max_speed = 1.6 * width
        middle = self.top + field_h / 2
        self.paddle_y = [middle, middle]  # centres
        self.scores = [0, 0]
        self.right_human = False
        self._follow_pointer = [False, False]
        self.ball_x = width / 2
        self.ball_y = middle
        self.ball_vx = 0.0
        self.ball_vy = 0.0
        self._serve_in = SERVE_DELAY
        self._serve_dir = self._rng.choice((-1, 1))
        self._score_text: tuple[tuple[int, int], pygame.Surface] | None = None

    # --- input and simulation ---------------------------------------------------------

    def on_input(self, event: InputEvent, player: int, pressed: bool) -> None:
        if player == 1 and not self.right_human:
            logger.info("pong: player 1 joined, right paddle is theirs")
            self.right_human = True
        self._follow_pointer[player] = isinstance(event, PointerEvent)

    def _move_paddle(self, side: int, dt: float) -> None:
        controls = self.controls[side]
        half = self.paddle_h / 2
        lo, hi = self.top + half, self.height - half
        y = self.paddle_y[side]
        if side == 1 and not self.right_human:
            # The AI chases the ball only while it comes towards it, at limited speed:
            # beatable, and the same every run.
            target = self.ball_y if self.ball_vx > 0 else (self.top + self.height) / 2
            y += max(-self.ai_speed * dt, min(self.ai_speed * dt, target - y))
        elif self._follow_pointer[side] and controls.pointer is not None:
            y = self.top + controls.pointer[1] * (self.height - self.top)
        else:
            y += controls.vertical() * self.paddle_speed * dt
        self.paddle_y[side] = max(lo, min(hi, y))

    def _serve(self) -> None:
        angle = self._rng.uniform(-MAX_SERVE, MAX_SERVE)
        self.ball_x = self.width / 2
        self.ball_y = (self.top + self.height) / 2
        self.ball_vx = self._serve_dir * self.base_speed * math.cos(angle)
        self.ball_vy = self.base_speed * math.sin(angle)

    def _paddle_rect(self, side: int) -> pygame.Rect:
        return pygame.Rect(
            self.paddle_x[side], round(self.paddle_y[side] - self.paddle_h / 2),
            self.paddle_w, self.paddle_h,
        )

    def _bounce(self, side: int) -> None:
        offset = (self.ball_y - self.paddle_y[side]) / (self.paddle_h / 2 + self.ball_size / 2)
        angle = max(-1.0, min(1.0, offset)) * MAX_BOUNCE
        speed = min(math.hypot(self.ball_vx, self.ball_vy) * SPEEDUP, self.max_speed)
        direction = 1 if side == 0 else -1
        self.ball_vx = direction * speed * math.cos(angle)
        self.ball_vy = speed * math.sin(angle)
        half = self.ball_size / 2
        edge = self.paddle_x[0] + self.paddle_w + half if side == 0 else self.paddle_x[1] - half
        self.ball_x = edge

    def _move_ball(self, dt: float) -> None:
        # Sub-steps of at most half a ball so a fast ball cannot pass through a paddle.
        distance = math.hypot(self.ball_vx, self.ball_vy) * dt
        steps = max(1, math.ceil(distance / (self.ball_size / 2)))
        half = self.ball_size / 2
        for _ in range(steps):
            self.ball_x += self.ball_vx * dt / steps
            self.ball_y += self.ball_vy * dt / steps
            if self.ball_y - half < self.top:
                self.ball_y = 2 * (self.top + half) - self.ball_y
                self.ball_vy = abs(self.ball_vy)
            elif self.ball_y + half > self.height:
                self.ball_y = 2 * (self.height - half) - self.ball_y
                self.ball_vy = -abs(self.ball_vy)
            ball = pygame.Rect(round(self.ball_x - half), round(self.ball_y - half),
                               self.ball_size, self.ball_size)
            for side in (0, 1):
                toward = self.ball_vx < 0 if side == 0 else self.ball_vx > 0
                if toward and ball.colliderect(self._paddle_rect(side)):
                    self._bounce(side)
            if self.ball_x + half < 0 or self.ball_x - half > self.width:
                scorer = 1 if self.ball_x < 0 else 0
                self.scores[scorer] += 1
                # The next serve goes towards the player who conceded.
                self._serve_dir = -1 if scorer == 1 else 1
                self._serve_in = SERVE_DELAY
                self.ball_x, self.ball_y = self.width / 2, (self.top + self.height) / 2
                self.ball_vx = self.ball_vy = 0.0
                return

    def step(self, dt: float) -> None:
        for side in (0, 1):
            self._move_paddle(side, dt)
        if self._serve_in > 0:
            self._serve_in -= dt
            if self._serve_in <= 0:
                self._serve()
            return
        self._move_ball(dt)

    # --- drawing ------------------------------------------------------------------------

    def render(self, surface: pygame.Surface) -> None:
        surface.fill(BACKGROUND)
        dash = max(8, self.height // 40)
        x = self.width // 2 - 2
        for y in range(self.top, self.height, dash * 2):
            surface.fill(NET, (x, y, 4, dash))
        for side in (0, 1):
            surface.fill(FOREGROUND, self._paddle_rect(side))
        half = self.ball_size / 2
        surface.fill(
            FOREGROUND,
            (round(self.ball_x - half), round(self.ball_y - half), self.ball_size, self.ball_size),
        )
        scores = (self.scores[0], self.scores[1])
        if self._score_text is None or self._score_text[0] != scores:
            text = font(max(24, self.height // 8)).render(
                f"{scores[0]}   {scores[1]}", True, FOREGROUND
            )
            self._score_text = (scores, text)
        text = self._score_text[1]
        surface.blit(text, text.get_rect(midtop=(self.width // 2, self.top + 8)))
