"""The API's error type and its JSON rendering.

Every failure the service reports to a client is an :class:`ApiError`: an HTTP status, a stable
snake_case ``code`` for programs and a ``message`` for people, rendered as the wire contract's
``{"error": {"code": ..., "message": ...}}`` body. Nothing else (no stack trace) reaches clients.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """A failure to report to the client as a JSON error body.

    :param status: HTTP status code (400, 401, 403, 404, 409, 413, 415, 422, 429, 503).
    :param code: stable snake_case identifier, e.g. ``"room_not_found"``.
    :param message: human-readable explanation, safe to show to a guest.
    :param headers: extra response headers, e.g. ``{"Retry-After": "5"}`` (seconds).

    Build a new one for every raise (a function such as ``room_not_found()``, never a module
    constant): a raised exception keeps its traceback, and with it the raising request's frames.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        """Render as a JSON response with the error body and this error's headers."""
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Build the contract's error body ``{"error": {"code", "message"}}`` with ``status``
    (declared for the OpenAPI document as :class:`web.wire.ErrorBody`; this module stays free
    of pydantic because the rendition workers import it)."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return exc.to_response()
