"""The application factory: one ASGI app serving the HTTP side and the live side."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from asgi_correlation_id import CorrelationIdMiddleware
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from web import health, openapi, pages
from web.accounts import endpoints as account_endpoints
from web.accounts import oidc_endpoints
from web.admin import endpoints as admin_endpoints
from web.assets import build_id, static_mounts
from web.errors import ApiError, error_response, handle_api_error
from web.images import downloads as image_downloads
from web.images import endpoints as image_endpoints
from web.images import upload_endpoints
from web.origins import CrossOriginGuard
from web.replica import build_replica
from web.rooms import cohost_endpoints
from web.rooms import endpoints as room_endpoints
from web.settings import Settings
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


def create_app(
    settings: Settings | None = None,
    *,
    http_deadlines: bool = False,
    renditions_on_demand: bool = False,
    on_identity: oidc_endpoints.IdentityHook = account_endpoints.organisation_sign_in,
) -> ProxyHeadersMiddleware:
    """Build the whole service for ``settings`` (default: read from the environment).

    :param http_deadlines: whether the server runs web/connections.py's protocol (request
        header and body deadlines), as ``imageshark serve`` does when its probe passes; shown
        as ``imageshark_fast_path{path="http"}``. A plain ``uvicorn --factory`` cannot.
    :param renditions_on_demand: start the rendition workers at the first upload instead of
        at start-up (the test suite's servers, most of which never render; see
        :class:`~web.pipeline.RenditionPool`).
    :param on_identity: what a verified organisation sign-on leads to (the host accounts'
        sign-in, :func:`web.accounts.endpoints.organisation_sign_in`, by default; tests pass
        their own). Its routes exist only when
        ``settings.oidc_enabled``.

    :returns: an ASGI app: Socket.IO at ``/socket.io``, everything else by Starlette, behind
        uvicorn's ProxyHeadersMiddleware trusting ``settings.trusted_proxies`` (the client
        address is the rightmost X-Forwarded-For entry that is not one of them). Its
        lifespan opens the database pool, the rendition pool and the event bus, and closes
        them at shutdown, and runs the collector with :data:`GC_THRESHOLDS`. Run it with
        ``imageshark serve``, or ``uvicorn --factory web.app:create_app`` with the flags the
        README lists ("Serving with plain uvicorn").
    """
    settings = settings or Settings()
    replica = build_replica(
        settings, http_deadlines=http_deadlines, renditions_on_demand=renditions_on_demand
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await replica.start()
        # Start-up objects (modules, templates, pools) live as long as the process: move them
        # out of the collector's sight so full collections stay short (gc.freeze docs).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield {"services": replica.services}
        finally:
            gc.set_threshold(*thresholds)
            await replica.stop()

    operations = [
        *room_endpoints.operations,
        *account_endpoints.operations,
        *cohost_endpoints.operations,
        *admin_endpoints.operations,
        *image_endpoints.operations,
        *upload_endpoints.operations,
        *image_downloads.operations,
        *health.operations,
        *(oidc_endpoints.operations(on_identity) if settings.oidc_enabled else ()),
        replica.metrics.operation(settings.metrics_token),
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
            Middleware(CrossOriginGuard, policy=replica.origins),
        ],
        lifespan=lifespan,
    )
    service = socketio.ASGIApp(
        replica.services.sio, other_asgi_app=starlette_app, socketio_path="socket.io"
    )
    # Here rather than in the server's options, so every way of serving the app uses the same
    # trust; with a list (never "*") uvicorn walks X-Forwarded-For from the right.
    return ProxyHeadersMiddleware(service, trusted_hosts=list(settings.trusted_proxies))
