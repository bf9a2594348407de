"""The OpenAPI 3.1 document of the HTTP API (``/openapi.json``) and its reference page (``/docs``).

The document is generated from the endpoint modules' :class:`~web.wire.Operation` records and
their pydantic models (:mod:`web.wire`), so it cannot drift from the routes: every operation
the app serves is one of those records. Each operation lists its answers and its errors; the
errors every operation of a kind can give (a JSON body's, a change's, the database's) are added
here. ``/docs`` is Swagger UI (npm ``swagger-ui-dist``, copied into ``static/vendor`` by
``npm run build``) reading ``/openapi.json``; nothing is fetched from elsewhere.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any, Union, get_args, get_origin

from anyio import to_thread
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.pages import SECURITY_HEADERS, templates
from web.wire import Binary, ErrorBody, Operation

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF_TEMPLATE.format(model="ErrorBody")}
_PATH_PARAMETER = re.compile(r"{([^}]+)}")

PATH_PARAMETERS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "token": (
        "The room's join token (24 URL-safe characters).",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,64}$"},
    ),
    "image_id": (
        "The image's id.",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    ),
    "key": (
        "The image's storage key, from its `url`.",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
    ),
    "upload_id": (
        "The upload's id, as `POST .../uploads` answered it.",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
    ),
    "session_id": (
        "The session's id, as `GET /api/me/sessions` lists it.",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    ),
    "invite_id": (
        "The invite's id, as `POST .../cohost-invites` answered it.",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    ),
    "account_id": (
        "An account's id, as `GET .../cohosts` or `GET /api/admin/accounts` lists it.",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    ),
    "invite_token": (
        "The invite link's token (its last path segment, 43 URL-safe characters).",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
    ),
    "name": ("Which rendition.", {"type": "string", "enum": ["display.jpg", "thumb.jpg"]}),
}
"""Description and JSON Schema of each path parameter, by name."""

SECURITY_SCHEMES: Mapping[str, Mapping[str, Any]] = {
    "hostKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The room's host key, `Authorization: Bearer <host_key>`.",
    },
    "participantKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Participant-Key",
        "description": "A participant's key, as `POST .../participants` answered it.",
    },
    "participantCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "imageshark_p_<room id>",
        "description": "The signed HTTP-only cookie `POST .../participants` sets (one a room).",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "imageshark_session",
        "description": "A host account's session, set by `POST /api/session` (HTTP-only).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`IMAGESHARK_METRICS_TOKEN`, when set.",
    },
}

_JSON_BODY_ERRORS = {
    400: ("invalid_json",),
    413: ("body_too_large",),
    415: ("unsupported_media_type",),
    422: ("invalid_body",),
}
_CHANGE_ERRORS = {403: ("cross_origin_refused",)}
_ROOM_ERRORS = {404: ("not_found",), 503: ("database_unavailable",)}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}
_STATUS_TEXT = {
    400: "Bad request",
    401: "Credentials needed",
    403: "Refused",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict with the room's state",
    410: "Gone",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid field",
    429: "Too many requests",
    503: "Unavailable for now",
    507: "Out of storage",
}


def build_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``operations``.

    :param operations: every operation the app serves (see :func:`web.app.create_app`).
    :returns: the document as JSON-ready dicts and lists.
    :raises ValueError: two operations with the same method and path, or the same id.
    """
    models = _models(operations)
    refs, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)
    schemas = dict(definitions.get("$defs", {}))

    def schema_of(body: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        members = _union_members(body)
        if len(members) > 1:
            return {"anyOf": [refs[(member, mode)] for member in members]}
        return dict(refs[(body, mode)])

    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for operation in operations:
        entry = paths.setdefault(operation.path, {})
        method = operation.method.lower()
        if method in entry or operation.operation_id in seen_ids:
            raise ValueError(f"{operation.method} {operation.path} is described twice")
        seen_ids.add(operation.operation_id)
        entry[method] = _operation(operation, schema_of)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "ImageShark API",
            "version": _version(),
            "description": (
                "The HTTP side of ImageShark: rooms, participants, uploads, moderation and "
                'downloads. Every error is `{"error": {"code", "message"}}`; each '
                "response lists the codes it may carry. Live events go over Socket.IO at "
                "`/socket.io` (not described here; see docs/API.md)."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": dict(SECURITY_SCHEMES)},
    }


def _version() -> str:
    try:
        return metadata.version("imageshark")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def _union_members(body: Any) -> tuple[Any, ...]:
    if get_origin(body) in (Union, types.UnionType):
        return get_args(body)
    return (body,)


def _models(operations: Iterable[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for operation in operations:
        for request in (operation.body, operation.form):
            if request is not None:
                found[(request, "validation")] = None
        for answer in operation.answers.values():
            if answer.body is None or isinstance(answer.body, Binary):
                continue
            for member in _union_members(answer.body):
                found[(member, "serialization")] = None
    return list(found)


def _operation(operation: Operation, schema_of: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
    }
    if operation.description:
        described["description"] = operation.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS[name][0],
            "schema": dict(PATH_PARAMETERS[name][1]),
        }
        for name in _PATH_PARAMETER.findall(operation.path)
    ]
    parameters += [
        {
            "name": parameter.name,
            "in": parameter.location,
            "required": False,
            "description": parameter.description,
            "schema": dict(parameter.schema),
        }
        for parameter in operation.parameters
    ]
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        described["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schema_of(operation.body, "validation")}},
        }
    elif operation.form is not None:
        described["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": schema_of(operation.form, "validation"),
                    "encoding": {"file": {"contentType": "image/*, application/octet-stream"}},
                }
            },
        }
    elif operation.raw_body:
        described["requestBody"] = {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in operation.raw_body
            },
        }
    responses: dict[str, Any] = {}
    for status, answer in sorted(operation.answers.items()):
        response: dict[str, Any] = {"description": answer.description}
        if isinstance(answer.body, Binary):
            response["content"] = {
                answer.body.media_type: {"schema": {"type": "string", "format": "binary"}}
            }
        elif answer.body is not None:
            response["content"] = {
                "application/json": {"schema": schema_of(answer.body, "serialization")}
            }
        if answer.headers:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in answer.headers.items()
            }
        responses[str(status)] = response
    for status, codes in sorted(_errors(operation).items()):
        if str(status) in responses:
            continue
        error: dict[str, Any] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}: "
            + ", ".join(f"`{code}`" for code in codes),
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        if status in (429, 503, 507):
            error["headers"] = dict(_RETRY_AFTER)
        responses[str(status)] = error
    described["responses"] = responses
    described["security"] = [
        {} if scheme == "anonymous" else {scheme: []} for scheme in operation.security
    ]
    return described


def _errors(operation: Operation) -> dict[int, tuple[str, ...]]:
    """The operation's own errors and those of its kind, codes merged per status."""
    merged: dict[int, dict[str, None]] = {}
    kinds: list[Mapping[int, tuple[str, ...]]] = [operation.errors]
    if operation.body is not None:
        kinds.append(_JSON_BODY_ERRORS)
    if operation.method in ("POST", "PATCH", "PUT", "DELETE"):
        kinds.append(_CHANGE_ERRORS)
    if "{token}" in operation.path:
        kinds.append(_ROOM_ERRORS)
    for kind in kinds:
        for status, codes in kind.items():
            merged.setdefault(status, {}).update(dict.fromkeys(codes))
    return {status: tuple(codes) for status, codes in merged.items()}


class OpenApiDocument:
    """``GET /openapi.json``: the document of ``operations``, built in a worker thread on the
    first request (pydantic's schema generation takes tens of milliseconds) and kept.

    :param operations: every operation the app serves.
    """

    def __init__(self, operations: Sequence[Operation]) -> None:
        self.operations = list(operations)
        self._body: bytes | None = None

    def render(self) -> bytes:
        """The document as compact UTF-8 JSON (blocking: call from a thread)."""
        if self._body is None:
            document = build_document(self.operations)
            self._body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return self._body

    async def endpoint(self, request: Request) -> Response:
        """Serve the document (``application/json``, revalidated on every use)."""
        body = self._body if self._body is not None else await to_thread.run_sync(self.render)
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


async def api_docs(request: Request) -> Response:
    """``GET /docs``: Swagger UI on ``/openapi.json``, under the pages' security headers."""
    return templates.TemplateResponse(request, "api_docs.html", {}, headers=SECURITY_HEADERS)


def routes(operations: Sequence[Operation]) -> list[Route]:
    """``/openapi.json`` for ``operations`` and the ``/docs`` page (neither is in the
    document: they are not part of the API)."""
    document = OpenApiDocument(operations)
    return [
        Route("/openapi.json", document.endpoint, methods=["GET"], include_in_schema=False),
        Route("/docs", api_docs, methods=["GET"], include_in_schema=False),
    ]
