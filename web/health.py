"""Liveness and readiness probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.services import services


async def healthz(request: Request) -> Response:
    """200 while the process serves requests (liveness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: 503 when the database does not answer, else 200.

    Redis is checked and reported too, but its loss only marks the replica ``degraded``: every
    replica shares one Redis, so failing readiness on it would take the whole service out of
    the load balancer, while uploads and (through the event log) live delivery keep working
    without it.
    """
    app = services(request)
    checks: dict[str, str] = {}
    try:
        await app.database.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}"
    backend = app.bus.backend
    if backend is not None:
        try:
            await app.bus.ping()
            checks[backend] = "ok"
        except Exception as exc:
            checks[backend] = f"unavailable: {type(exc).__name__}"
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(value != "ok" for value in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JSONResponse({"status": status, "checks": checks}, status_code=code)


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
