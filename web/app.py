"""The application factory: one ASGI app serving the HTTP side and the live side."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any

import socketio
from anyio import to_thread
from asgi_correlation_id import CorrelationIdMiddleware
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from realtime.bus import LocalBus, RedisBus, RoomEventBus
from realtime.delivery import LiveDelivery
from realtime.fanout import FanOutCounters
from realtime.namespace import AccessRefused
from realtime.presence import LocalPresence, Presence, RedisPresence
from realtime.server import create_live_server
from web import health, openapi, pages
from web.assets import build_id, static_mounts
from web.database import Database
from web.errors import ApiError, error_response, handle_api_error
from web.events import DatabaseRoomLog
from web.images import downloads as image_downloads
from web.images import endpoints as image_endpoints
from web.images.repository import ImageRepository
from web.images.service import ImageService
from web.metrics import Metrics
from web.migrate import upgrade
from web.origins import CrossOriginGuard, OriginPolicy
from web.pipeline import RenditionPool
from web.rate_limits import RateLimiter
from web.rooms import endpoints as room_endpoints
from web.rooms.endpoints import participant_cookie
from web.rooms.qr import QrCodes
from web.rooms.repository import Room, RoomRepository
from web.rooms.service import RoomService
from web.rooms.views import LanAddress
from web.services import Services
from web.settings import Settings
from web.signing import SigningSecret
from web.storage import RECOVERY_PERIOD_SECONDS, LocalImageStore
from web.uploads import DISK_FULL_ERRNOS, insufficient_storage

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "5"
# The collector's thresholds while the app runs, however it is served: the default's full
# collections stalled large rooms' fan-outs (docs/decisions/0003-gc-threshold-for-the-live-path.md).
GC_THRESHOLDS = (50_000, 10, 10)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("database unavailable: %s", exc)
    return error_response(
        503,
        "database_unavailable",
        "The database is not reachable right now; nothing was stored. Please retry.",
        {"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _os_error(request: Request, exc: Exception) -> Response:
    """A full disk (any write: renditions, downloads) is 507 with Retry-After, not 500."""
    assert isinstance(exc, OSError)
    if exc.errno in DISK_FULL_ERRNOS:
        logger.warning("disk full: %s", exc)
        return insufficient_storage().to_response()
    raise exc  # any other OSError: the 500 handler, which logs its traceback


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal_error", "Something went wrong on our side.")


async def _periodic_catch_up(delivery: LiveDelivery, period: float) -> None:
    """Every ``period`` seconds, emit logged events the bus lost (see LiveDelivery.catch_up)."""
    while True:
        await asyncio.sleep(period)
        try:
            await delivery.catch_up()
        except Exception:  # database briefly down: try again next period
            logger.warning("periodic catch-up failed", exc_info=True)


async def _periodic_recovery(store: LocalImageStore, images: ImageRepository) -> None:
    """Now and again, finish the uploads of replicas that died and were not restarted (on
    NFS their locks are only freed when the lease expires, after this one started)."""
    while True:
        await asyncio.sleep(RECOVERY_PERIOD_SECONDS)
        try:
            published, removed = await store.recover(images.existing_keys)
        except Exception:  # database briefly down: try again next period
            logger.warning("recovery of interrupted uploads failed", exc_info=True)
            continue
        if published or removed:
            logger.warning(
                "recovered interrupted uploads: %d finished, %d removed", published, removed
            )


async def _may_view(
    rooms: RoomService, room: Room, auth: dict[str, Any], environ: dict[str, Any]
) -> bool:
    """Whether a Socket.IO client may see a passcode room: it sent the host key
    (``auth.host_key``), a participant key (``auth.participant_key``) or the signed
    participant cookie with its handshake."""
    if rooms.is_host_key(room, auth.get("host_key")):
        return True
    key = auth.get("participant_key")
    cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = cookies.get(participant_cookie(room))
    participant = await rooms.participant(
        room,
        key=key if isinstance(key, str) else None,
        cookie=morsel.value if morsel is not None else None,
    )
    return participant is not None


def create_app(
    settings: Settings | None = None,
    *,
    http_deadlines: bool = False,
    renditions_on_demand: bool = False,
) -> ProxyHeadersMiddleware:
    """Build the whole service for ``settings`` (default: read from the environment).

    :param http_deadlines: whether the server runs web/connections.py's protocol (request
        header and body deadlines), as ``imageshark serve`` does when its probe passes; shown
        as ``imageshark_fast_path{path="http"}``. A plain ``uvicorn --factory`` cannot.
    :param renditions_on_demand: start the rendition workers at the first upload instead of
        at start-up (the test suite's servers, most of which never render; see
        :class:`~web.pipeline.RenditionPool`).

    :returns: an ASGI app: Socket.IO at ``/socket.io``, everything else by Starlette, behind
        uvicorn's ProxyHeadersMiddleware trusting ``settings.trusted_proxies`` (the client
        address is the rightmost X-Forwarded-For entry that is not one of them). Its
        lifespan opens the database pool, the rendition pool and the event bus, and closes
        them at shutdown, and runs the collector with :data:`GC_THRESHOLDS`. Run it with
        ``imageshark serve``, or ``uvicorn --factory web.app:create_app`` with the flags the
        README lists ("Serving with plain uvicorn").
    """
    settings = settings or Settings()
    database = Database(settings)
    store = LocalImageStore(settings.data_dir)
    renditions = RenditionPool(
        settings.rendition_workers,
        settings.rendition_queue,
        room_queue_limit=settings.rendition_room_queue,
        timeout_seconds=settings.rendition_timeout_seconds,
        on_demand=renditions_on_demand,
    )
    bus: RoomEventBus = (
        RedisBus(settings.redis_url.get_secret_value(), settings.redis_prefix)
        if settings.redis_url is not None
        else LocalBus()
    )
    presence: Presence = (
        RedisPresence(bus.client, settings.redis_prefix, ttl=settings.presence_ttl_seconds)
        if isinstance(bus, RedisBus)
        else LocalPresence()
    )
    rate_limits = RateLimiter(
        {
            "upload": settings.upload_rate_limit,
            "anonymous_upload": settings.anonymous_upload_rate_limit,
            "join": settings.join_rate_limit,
            "create_room": settings.room_create_rate_limit,
            "open_join": settings.open_join_rate_limit,
            "code_lookup": settings.open_join_rate_limit,
        },
        settings.redis_url.get_secret_value() if settings.redis_url is not None else None,
        settings.redis_prefix,
    )
    signing = SigningSecret(settings.secret_key)
    origins = OriginPolicy(settings.public_base_url, settings.allowed_origins)
    room_service = RoomService(RoomRepository(database), settings, bus, rate_limits, signing)
    image_repository = ImageRepository(database)

    async def resolve_room(auth: dict[str, Any], environ: dict[str, Any]) -> tuple[int, int] | None:
        room = await room_service.find(auth["token"])
        if room is None:
            return None
        if room.passcode is not None and not await _may_view(room_service, room, auth, environ):
            raise AccessRefused("passcode required: join the room first", "passcode_required")
        return room.id, room.last_seq

    registry = CollectorRegistry()  # everything /metrics serves
    sio, delivery, namespace, fast_paths = create_live_server(
        resolve_room,
        DatabaseRoomLog(database, image_repository),
        presence,
        ping_interval=settings.ping_interval_seconds,
        ping_timeout=settings.ping_timeout_seconds,
        replay_limit=settings.replay_limit,
        allowed_origin=origins.allows_handshake,
        connect_timeout=settings.connect_timeout_seconds,
        fanout_counters=FanOutCounters(registry),
    )
    metrics = Metrics(
        connected_clients=lambda: sum(len(room.clients) for room in delivery.rooms.values()),
        active_rooms=lambda: len(delivery.rooms),
        registry=registry,
        fast_paths={**fast_paths, "http": http_deadlines},
    )
    image_service = ImageService(
        image_repository, room_service, store, renditions, bus, settings, metrics, rate_limits
    )
    state = Services(
        settings=settings,
        database=database,
        store=store,
        renditions=renditions,
        bus=bus,
        rooms=room_service,
        images=image_service,
        sio=sio,
        signing=signing,
        qr=QrCodes(),
        lan=LanAddress(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if settings.migrate_on_start:
            await to_thread.run_sync(upgrade, settings)
        await signing.load(database)
        published, removed = await store.recover(image_repository.existing_keys)
        if published or removed:
            logger.warning(
                "recovered interrupted uploads: %d finished, %d removed", published, removed
            )
        await renditions.start()
        await bus.start(delivery.deliver, delivery.catch_up)
        await namespace.start()
        catch_up = (
            asyncio.create_task(_periodic_catch_up(delivery, settings.catch_up_seconds))
            if isinstance(bus, RedisBus)
            else None
        )
        recovery = asyncio.create_task(_periodic_recovery(store, image_repository))
        # Start-up objects (modules, templates, pools) live as long as the process: move them
        # out of the collector's sight so full collections stay short (gc.freeze docs).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield {"services": state}
        finally:
            gc.set_threshold(*thresholds)
            if catch_up is not None:
                catch_up.cancel()
            recovery.cancel()
            await presence.close()
            await bus.close()
            await delivery.close()
            await renditions.close()
            await store.close()
            await rate_limits.close()
            await database.close()

    operations = [
        *room_endpoints.operations,
        *image_endpoints.operations,
        *image_downloads.operations,
        *health.operations,
        metrics.operation(settings.metrics_token),
    ]
    starlette_app = Starlette(
        routes=[
            *pages.routes,
            *(operation.route() for operation in operations),
            *openapi.routes(operations),
            *static_mounts(settings.static_dir, build_id(settings.static_dir)),
        ],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: _http_error,
            DBAPIError: _database_unavailable,
            PoolTimeoutError: _database_unavailable,
            ConnectionError: _database_unavailable,
            OSError: _os_error,
            Exception: _internal_error,
        },
        middleware=[
            Middleware(CorrelationIdMiddleware, header_name="X-Request-ID"),
            Middleware(CrossOriginGuard, policy=origins),
        ],
        lifespan=lifespan,
    )
    service = socketio.ASGIApp(sio, other_asgi_app=starlette_app, socketio_path="socket.io")
    # Here rather than in the server's options, so every way of serving the app uses the same
    # trust; with a list (never "*") uvicorn walks X-Forwarded-For from the right.
    return ProxyHeadersMiddleware(service, trusted_hosts=list(settings.trusted_proxies))
