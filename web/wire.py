"""Wire bodies as declared types, and the record of each HTTP operation.

Every JSON body the API reads or writes is a pydantic model derived from :class:`WireModel`:
requests are parsed through one (:func:`parse_body`), answers are built from one
(:func:`json_answer`), and ``web/openapi.py`` turns the models and each endpoint module's
:class:`Operation` records into the OpenAPI document at ``/openapi.json``. Models are strict
(no coercion: ``"5"`` is not an integer) and forbid fields they do not declare, so the document
says exactly what goes over the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.errors import ApiError

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""An ISO 8601 UTC time as the API writes it (``datetime.isoformat()``, e.g.
``2026-05-01T18:00:00+00:00``)."""


class WireModel(BaseModel):
    """Base of every JSON body: strict types, no undeclared field (in or out)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(WireModel):
    """What went wrong: ``code`` for programs, ``message`` for people."""

    code: str = Field(pattern=r"^[a-z0-9_]+$", examples=["room_not_found"])
    message: str = Field(examples=["This room does not exist or has expired."])


class ErrorBody(WireModel):
    """The body of every error answer (the wire contract's ``{"error": {...}}``, rendered by
    :func:`web.errors.error_response`)."""

    error: ErrorDetail


Body = TypeVar("Body", bound=WireModel)


def json_answer(
    body: WireModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON response holding ``body`` (every declared field, nulls included).

    :param body: the answer's model.
    :param status: the HTTP status.
    :param headers: extra response headers.
    """
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def parse_body(
    model: type[Body], body: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
) -> Body:
    """Parse a request's JSON object (from :func:`web.rooms.endpoints.json_body`) as ``model``.

    Models check their fields with the project's own rules, which raise :class:`ApiError`
    (``422 invalid_<field>``, ``unknown_field``...) straight through; what pydantic itself
    refuses becomes the same error shape.

    :param context: what the model's checks need (e.g. the current time), see each model.
    :raises ApiError: 422 ``unknown_field`` for an undeclared field, ``invalid_<field>`` for a
        value of the wrong type or out of range (the first one found).
    """
    try:
        return model.model_validate(body, context=dict(context or {}))
    except ValidationError as exc:
        raise _refusal(exc) from None


def _refusal(exc: ValidationError) -> ApiError:
    errors = exc.errors(include_url=False, include_input=False)
    unknown = sorted(str(error["loc"][0]) for error in errors if error["type"] == "extra_forbidden")
    if unknown:
        return ApiError(422, "unknown_field", f"Unknown field(s): {', '.join(unknown)}.")
    first = errors[0]
    name = str(first["loc"][0]) if first["loc"] else "body"
    return ApiError(422, f"invalid_{name}", f"'{name}': {first['msg']}.")


# --- operation records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binary:
    """A response body that is not JSON (an image, a ZIP archive, Prometheus text).

    :ivar media_type: its ``Content-Type``, e.g. ``"image/png"``; ``"image/*"`` for any image.
    """

    media_type: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One successful response of an operation.

    :ivar description: what it means, one sentence.
    :ivar body: its JSON model, a :class:`Binary` body, or None for no body (``204``).
    :ivar headers: response headers worth knowing, name to description.
    """

    description: str
    body: type[WireModel] | Binary | Any | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A query or header parameter (path parameters are described once, in web/openapi.py).

    :ivar schema: its JSON Schema, e.g. ``{"type": "integer", "minimum": 1}``.
    """

    name: str
    location: Literal["query", "header"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


Security = Literal[
    "anonymous", "hostKey", "participantKey", "participantCookie", "sessionCookie", "metricsToken"
]
"""Ways a request may authenticate (schemes of the document; ``anonymous``: none needed)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """An HTTP operation: its route and what the OpenAPI document says about it.

    :ivar method: ``"GET"``, ``"POST"``, ``"PUT"``, ``"PATCH"`` or ``"DELETE"`` (GET routes answer
        ``HEAD`` too, as Starlette does).
    :ivar path: the Starlette path template, e.g. ``/api/rooms/{token}``.
    :ivar endpoint: the request handler.
    :ivar operation_id: unique camelCase name.
    :ivar summary: one line.
    :ivar tag: the group it is listed under.
    :ivar answers: successful responses by status.
    :ivar errors: error statuses with the codes each may carry; the document adds the ones
        every operation of its kind has (JSON body, change, database).
    :ivar body: the JSON request body's model, if it takes one.
    :ivar form: the ``multipart/form-data`` request body's model, if it takes one.
    :ivar raw_body: media types of a request body that is a file itself (a direct upload's
        ``PUT``), if it takes one.
    :ivar parameters: query and header parameters.
    :ivar security: accepted credentials, any one of them; ``anonymous`` when none is needed.
    :ivar description: longer text, Markdown.
    """

    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    operation_id: str
    summary: str
    tag: str
    answers: Mapping[int, Answer]
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    body: type[WireModel] | None = None
    form: type[WireModel] | None = None
    raw_body: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    security: tuple[Security, ...] = ("anonymous",)
    description: str = ""

    def route(self) -> Route:
        """The Starlette route serving this operation."""
        return Route(self.path, self.endpoint, methods=[self.method])
