"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from web.services import services
from web.wire import Answer, Operation, WireModel, json_answer


class Liveness(WireModel):
    """``GET /healthz``'s body."""

    status: Literal["ok"]


class Readiness(WireModel):
    """``GET /readyz``'s body: the verdict and each dependency's check."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, str] = Field(
        description="`database`, `storage` (the image files' folder or object store) and "
        "`redis` when configured: `ok` or `unavailable: <error type>`."
    )


async def healthz(request: Request) -> Response:
    """200 while the process serves requests (liveness)."""
    return json_answer(Liveness(status="ok"))


async def readyz(request: Request) -> Response:
    """Readiness: 503 when the database does not answer, else 200.

    Redis and the image store are checked and reported too, but their loss only marks the
    replica ``degraded``: every replica shares one Redis and one store, so failing readiness
    on them would take the whole service out of the load balancer, while the pages, the live
    side and (without Redis) uploads keep working; uploads refused by a store that is down
    answer ``503 busy`` with ``Retry-After``.
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
    try:
        await app.media.ping()
        checks["storage"] = "ok"
    except Exception as exc:  # a folder's OSError, an object store's 503
        checks["storage"] = f"unavailable: {type(exc).__name__}"
    status: Literal["ok", "degraded", "unavailable"]
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(value != "ok" for value in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return json_answer(Readiness(status=status, checks=checks), status=code)


operations = [
    Operation(
        "GET",
        "/healthz",
        healthz,
        "liveness",
        "Liveness probe",
        "operations",
        {200: Answer("The process serves requests.", Liveness)},
    ),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "readiness",
        "Readiness probe",
        "operations",
        {
            200: Answer(
                "Ready (`ok`), or `degraded` when only Redis or the image store does not answer.",
                Readiness,
            ),
            503: Answer("The database does not answer (`unavailable`).", Readiness),
        },
    ),
]
routes = [operation.route() for operation in operations]
