"""Liveness and readiness probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from realtime.bus import RedisBus
from web.services import services


async def healthz(request: Request) -> Response:
    """200 while the process serves requests (liveness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when the database (and Redis, if configured) answer; 503 naming what does not."""
    app = services(request)
    checks: dict[str, str] = {}
    try:
        await app.database.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if isinstance(app.bus, RedisBus):
        try:
            await app.bus.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
