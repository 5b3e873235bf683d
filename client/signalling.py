"""The client's side of ``POST /offer``: send the offer, read the answer or the refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


class ClientError(RuntimeError):
    """The client could not connect or the server refused it; the message says why."""


@dataclass(frozen=True)
class Answer:
    """The server's answer to an offer, and where the client landed."""

    sdp: str
    session: int | None = None
    share: str | None = None  # the session's share token (others join with it)
    role: str | None = None
    player: int | None = None


async def post_offer(base_url: str, body: dict[str, Any]) -> Answer:
    """POST ``body`` to ``base_url``/offer; :class:`ClientError` with the server's reason."""
    url = base_url.rstrip("/") + "/offer"
    try:
        async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
            try:
                answer = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                answer = {"error": (await response.text())[:200]}
            if response.status != 200:
                error = answer.get("error") if isinstance(answer, dict) else answer
                raise ClientError(f"server refused the offer ({response.status}): {error}")
    except aiohttp.ClientError as exc:
        raise ClientError(f"cannot reach {url}: {exc}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("sdp"), str):
        raise ClientError(f"{url} answered without an SDP: {str(answer)[:200]}")
    return Answer(sdp=answer["sdp"], session=answer.get("session"), share=answer.get("share"),
                  role=answer.get("role"), player=answer.get("player"))
