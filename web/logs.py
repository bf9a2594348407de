"""Logging: structlog rendering every record (ours, uvicorn's, libraries') as one JSON object
per line in production, or readable lines on a console; each carries the request id.

The request id comes from asgi-correlation-id's middleware (``X-Request-ID``: taken from the
request if it is a valid UUID, else generated, and echoed on the response).

Query parameters that carry credentials (the ``signature`` of a presigned download link,
token- or key-named ones, the ``code`` of the organisation sign-on's callback) are written as
``[redacted]`` in every record, uvicorn's access log included: a log reader could otherwise
download with a live link. So is the password of any URL in a record
(``smtp://user:[redacted]@host``: an SMTP, database or Redis URL in an error).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from asgi_correlation_id import correlation_id

from web.settings import Settings


def _add_request_id(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = correlation_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


REDACTED = "[redacted]"
SECRET_QUERY_PARAMETERS = (
    "signature",
    "sig",
    "token",
    "access_token",
    "key",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    # Organisation sign-on's callback (web/accounts/oidc_endpoints.py): the authorization code.
    "code",
    "client_secret",
)
_SECRET_QUERY_VALUE = re.compile(
    r"(?i)([?&](?:" + "|".join(map(re.escape, SECRET_QUERY_PARAMETERS)) + r")=)[^&#\s\"']*"
)


def redact_query_secrets(text: str) -> str:
    """``text`` with the value of every credential-carrying query parameter of a URL or path in
    it (see :data:`SECRET_QUERY_PARAMETERS`, any case) replaced by ``[redacted]``."""
    return _SECRET_QUERY_VALUE.sub(rf"\g<1>{REDACTED}", text)


_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]*@")


def redact_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it replaced
    by ``[redacted]`` (the user name is kept: it says which account, not how to use it)."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def _redact_secrets(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    # uvicorn's access record arrives here already formatted, path and query in "event".
    for name, value in event.items():
        if isinstance(value, str):
            if "=" in value:
                value = redact_query_secrets(value)
            if "://" in value:
                value = redact_url_passwords(value)
            event[name] = value
    return event


def _drop_color_message(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    # uvicorn passes a pre-coloured copy of its message as an extra; it is noise in logs.
    event.pop("color_message", None)
    return event


def configure_logging(settings: Settings) -> None:
    """Route all logging through one stderr handler in ``settings.log_format``.

    Call once at the entry point (``imageshark serve`` / ``migrate``), never at import time.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        _add_request_id,
        _redact_secrets,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
