"""The aiohttp application: signaling (``POST /offer``), health, session lifecycle."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCSessionDescription

from cloudarcade.cc import CONTROLLERS
from cloudarcade.encoder import CODECS, rtp_codec_for
from cloudarcade.metrics import METRICS, Metrics, add_metrics_route
from cloudarcade.metrics.definitions import BUSY, OFFER_REFUSAL_REASONS
from cloudarcade.netsim import Profile, RelayProcessError, load_profiles
from cloudarcade.server.games import available_games
from cloudarcade.server.lifecycle import CloseReason
from cloudarcade.server.limits import Limits, PendingOffers
from cloudarcade.server.options import OfferRequest, OptionError, SessionOptions, parse_offer
from cloudarcade.server.sdp_checks import OfferError, check_offer_sdp
from cloudarcade.server.session import GameSession
from cloudarcade.server.web import add_web_routes

logger = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    defaults: SessionOptions = field(default_factory=SessionOptions)
    max_sessions: int = 8
    # Network profiles a session may ask for by name (the shipped ones, plus
    # any loaded from a user file on the command line).
    profiles: dict[str, Profile] = field(default_factory=load_profiles)
    # Serve /metrics on the public port too (False when it has its own port).
    metrics_on_public_port: bool = True
    # Save every ``sample_every``-th source frame's luma under
    # ``sample_dir/session-<id>/`` (the bench's PSNR/SSIM reference).
    sample_dir: Path | None = None
    sample_every: int = 60
    # When set, ``/offer`` (and so joining through a share link) needs it:
    # ``Authorization: Bearer TOKEN`` or ``"token"`` in the JSON body.
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    # Where sessions and offer refusals are counted (and /metrics reads).
    metrics: Metrics = METRICS


SESSIONS = web.AppKey("sessions", dict)
CONFIG = web.AppKey("config", ServerConfig)
# (status, what) -> when a refusal of that kind was last logged.
REFUSALS_LOGGED = web.AppKey("refusals_logged", dict)
PENDING = web.AppKey("pending_offers", PendingOffers)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def offer(request: web.Request) -> web.Response:
    """Answer a WebRTC offer.

    Body: ``{"sdp", "type": "offer", game?, resolution?, fps?, codec?, bitrate?, stack?,
    cc?, seed?, join?, role?}``; ``join`` is a session's share token, ``role`` "player" or
    "spectator". Answer: ``{"sdp", "type": "answer", "session", "share", "role",
    "player"}``.

    Everything the offer says is checked before anything lasting is allocated;
    the game and the encoder wait until a viewer connects (``GameSession``).
    """
    config = request.app[CONFIG]
    authorized = config.token is None or _bearer_ok(request, config.token)
    raw = await _read_body(request, config.limits.body_timeout)
    if isinstance(raw, web.Response):
        return raw
    try:
        body: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        body = None
        if authorized:
            return _refuse(request, 400, f"offer body is not JSON: {exc}")
    if not authorized:
        assert config.token is not None
        if not (isinstance(body, dict) and _token_ok(body.get("token"), config.token)):
            return _refuse(request, 401, "an access token is required: "
                                         "'Authorization: Bearer TOKEN' or \"token\" in the body",
                           **{"WWW-Authenticate": 'Bearer realm="cloudarcade"'})
    try:
        wanted = parse_offer(body, config.defaults, config.profiles)
    except OptionError as exc:
        return _refuse(request, 400, str(exc))
    admitted = _admit(request, wanted)
    if isinstance(admitted, web.Response):
        return admitted
    session = admitted
    pending: PendingOffers = request.app[PENDING]
    pending.count += 1
    try:
        viewer, answer = await session.add_viewer(
            RTCSessionDescription(sdp=wanted.sdp, type="offer"), wanted.role)
    except OfferError as exc:
        return _refuse(request, 400, str(exc))
    except Exception:
        logger.exception("failed to answer an offer")
        return _error(500, "internal error while answering the offer; see the server log")
    finally:
        pending.count -= 1
        if not session.viewers:
            await session.close(CloseReason.REJECTED)
    logger.info("%r joined %r from %s", viewer, session, request.remote)
    return web.json_response({
        "sdp": answer.sdp, "type": answer.type, "session": session.id, "share": session.share,
        "role": viewer.role, "player": viewer.player,
    })


def _admit(request: web.Request, wanted: OfferRequest) -> GameSession | web.Response:
    """The session that will answer ``wanted`` (joined, or new); or the refusal to send.

    The SDP is checked first, with the codec and relay of the session it
    would join; then the limits on pending work. A new session is registered
    at once (it counts towards the limits) but builds no game or encoder yet.
    """
    config = request.app[CONFIG]
    sessions: dict[int, GameSession] = request.app[SESSIONS]
    limits = config.limits
    shared: GameSession | None = None
    if wanted.join is not None:
        shared = _find_shared(sessions, wanted.join)
        if shared is None:
            return _refuse(request, 404,
                           "join: no session has this share token (it may have ended)")
        if len(shared.viewers) >= limits.max_viewers:
            return _refuse(request, 503, f"session full: {limits.max_viewers} viewers",
                           **{"Retry-After": "5"})
        rtp_codec, relayed = shared.rtp_codec, shared.profile is not None
    else:
        rtp_codec, relayed = rtp_codec_for(wanted.options.codec), wanted.options.profile is not None
    try:
        check_offer_sdp(wanted.sdp, rtp_codec, need_host_candidate=relayed)
    except OfferError as exc:
        return _refuse(request, 400, str(exc))
    pending = request.app[PENDING].count
    if pending >= limits.max_pending_offers:
        return _refuse(request, 503, f"server busy: {pending} offers are being answered; "
                                     "retry in a second", reason=BUSY, **{"Retry-After": "1"})
    if shared is not None:
        return shared
    if len(sessions) >= config.max_sessions:
        return _refuse(request, 503, f"server full: {config.max_sessions} sessions",
                       **{"Retry-After": "5"})
    connecting = sum(1 for s in sessions.values() if s.connecting)
    if connecting >= limits.max_connecting:
        return _refuse(request, 503, f"server busy: {connecting} new sessions are still "
                                     "connecting; retry in a few seconds", reason=BUSY,
                       **{"Retry-After": "2"})
    options = wanted.options
    profile = config.profiles[options.profile] if options.profile is not None else None
    session = GameSession(options, bind=config.host, profile=profile,
                          sample_dir=config.sample_dir, sample_every=config.sample_every,
                          metrics=config.metrics, limits=limits,
                          on_closed=lambda s, reason: _forget(sessions, s))
    sessions[session.id] = session
    return session


async def _read_body(request: web.Request, timeout: float) -> bytes | web.Response:
    """The whole body, however many TCP segments it came in; or the refusal to send.

    aiohttp's own reading stops at the app's ``client_max_size`` (chunked or
    not); a body that trickles in slower than ``timeout`` is refused too.
    """
    too_large = f"offer body too large: at most {MAX_OFFER_BYTES} bytes"
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return _closing(_refuse(request, 413, too_large))
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _closing(_refuse(request, 413, too_large))
    except TimeoutError:
        return _closing(_refuse(request, 408, f"offer body: not all received within {timeout:g} s"))


def _closing(response: web.Response) -> web.Response:
    # The rest of the body is not worth reading: aiohttp closes the connection
    # after the response instead of draining it.
    response.force_close()
    return response


def _forget(sessions: dict[int, GameSession], session: GameSession) -> None:
    sessions.pop(session.id, None)


def _find_shared(sessions: dict[int, GameSession], token: object) -> GameSession | None:
    if not isinstance(token, str):
        return None
    for session in sessions.values():
        # Constant-time: a share token is a capability.
        if _token_ok(token, session.share):
            return session
    return None


def _token_ok(given: object, expected: str) -> bool:
    """``given == expected`` in constant time; False for anything but a string."""
    if not isinstance(given, str):
        return False
    # surrogatepass: JSON may carry lone surrogates ("\\ud800"); they must not raise.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and _token_ok(given.strip(), token)


# Refusals are logged at most once per (status, reason) per this many seconds:
# a client retrying in a loop must not flood the log.
_REFUSAL_LOG_INTERVAL = 60.0


def _refuse(request: web.Request, status: int, message: str, *, reason: str | None = None,
            **headers: str) -> web.Response:
    label = reason or OFFER_REFUSAL_REASONS.get(status, "bad_request")
    request.app[CONFIG].metrics.offers_refused.labels(label).inc()
    key = (status, message.split(":", 1)[0][:40])
    now = time.monotonic()
    logged = request.app[REFUSALS_LOGGED]
    if now - logged.get(key, -_REFUSAL_LOG_INTERVAL) >= _REFUSAL_LOG_INTERVAL:
        if len(logged) > 256:
            logged.clear()
        logged[key] = now
        logger.warning("offer from %s refused (%d): %s", request.remote, status, message)
    return _error(status, message, **headers)



async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "sessions": len(request.app[SESSIONS])})


async def session_link(request: web.Request) -> web.Response:
    """What the netsim relay of each of a session's viewers counted (its ``RelayStats``
    as JSON, by viewer id; null for a viewer with no profile). The bench reads the
    downlink's ``origin`` here: where the link's trace started, on the host's
    monotonic clock."""
    raw = request.match_info["id"]
    try:
        session_id = int(raw)
    except ValueError:
        return _error(400, f"session id {raw!r}: expected a decimal integer")
    session = request.app[SESSIONS].get(session_id)
    if session is None:
        return _error(404, f"no session {session_id}: it ended, or never started")
    viewers: dict[str, object] = {}
    for viewer in list(session.viewers.values()):
        relay = viewer.relay
        try:
            viewers[str(viewer.id)] = None if relay is None else (await relay.stats()).to_json()
        except RelayProcessError as exc:
            return _error(503, f"session {session_id}: its netsim relay did not answer ({exc})")
    return web.json_response({"session": session_id, "viewers": viewers})


async def catalog(request: web.Request) -> web.Response:
    """What a client may ask for: games, codecs, profiles, and the server's defaults."""
    config = request.app[CONFIG]
    d = config.defaults
    return web.json_response({
        "games": available_games(), "codecs": list(CODECS), "profiles": list(config.profiles),
        "ccs": sorted(CONTROLLERS),
        "defaults": {"game": d.game, "resolution": d.resolution, "fps": d.fps,
                     "codec": d.codec, "bitrate": d.bitrate, "profile": d.profile, "cc": d.cc,
                     "ladder": d.ladder},
    })


async def _close_sessions(app: web.Application) -> None:
    sessions: dict[int, GameSession] = app[SESSIONS]
    tasks = [session.close(CloseReason.SHUTDOWN) for session in list(sessions.values())]
    for task in tasks:
        await task
    sessions.clear()


def create_app(config: ServerConfig | None = None) -> web.Application:
    """The server application; closing it (``runner.cleanup()``) closes every session."""
    app = web.Application(client_max_size=MAX_OFFER_BYTES)
    app[CONFIG] = config or ServerConfig()
    app[SESSIONS] = {}
    app[REFUSALS_LOGGED] = {}
    app[PENDING] = PendingOffers()
    app.router.add_post("/offer", offer)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/catalog", catalog)
    app.router.add_get("/sessions/{id}/link", session_link)
    add_web_routes(app)
    if app[CONFIG].metrics_on_public_port:
        add_metrics_route(app, app[CONFIG].metrics.registry)
    app.on_shutdown.append(_close_sessions)
    return app
