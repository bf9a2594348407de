"""Connection-level limits of ``imageshark serve``: a deadline for receiving request headers,
an idle timeout between the chunks of any request body, and the process's open-file limit.

uvicorn bounds the idle time between keep-alive requests but not the time a client may take
to send one request's headers, so a few thousand sockets that each sent part of a request line
("slowloris") held every file descriptor until normal requests failed.
:class:`HeaderTimeoutProtocol` subclasses uvicorn's httptools protocol to close such a
connection (with a ``408``) once ``header_timeout`` seconds have passed since its request
began, and one whose request body pauses longer than ``body_timeout`` seconds: headers that
arrive in time followed by a body that never does held a connection just as long, on every
route (JSON bodies, Socket.IO long-polling), not only on uploads.

It reads uvicorn internals (written against uvicorn 0.54; ``pyproject.toml`` caps the range):
:func:`http_protocol` checks them at start-up (realtime/internals.py) and falls back to
uvicorn's stock protocol, with one warning naming what is missing, when they are not as
expected.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from realtime.internals import missing_attributes, report_fallback

logger = logging.getLogger(__name__)


def _timeout_response(text: bytes) -> bytes:
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\n"
        b"connection: close\r\n"
        b"\r\n" + text
    )


_HEADER_TIMEOUT_RESPONSE = _timeout_response(b"Request headers too slow")
_BODY_TIMEOUT_RESPONSE = _timeout_response(b"Request body too slow")
_UNLIMITED_TARGET = 1_048_576
# What the subclass relies on, of the protocol, its request cycle and its flow control;
# checked before it is used.
_REQUIRED_ATTRIBUTES = (
    "connection_made",
    "connection_lost",
    "on_message_begin",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "loop",
    "transport",
    "cycle",
    "flow",
)
_REQUIRED_CYCLE_ATTRIBUTES = ("response_started", "response_complete", "keep_alive")
_REQUIRED_FLOW_ATTRIBUTES = ("read_paused",)


def http_protocol(
    header_timeout: float | None, body_timeout: float | None = None
) -> type[asyncio.Protocol] | str:
    """The ``http=`` argument for uvicorn: :class:`HeaderTimeoutProtocol` configured with
    ``header_timeout`` and ``body_timeout`` (seconds; None: that one off), or ``"auto"``
    (uvicorn's own choice, no deadlines) when the header timeout is off or uvicorn's httptools
    protocol is not as this module expects (logged as a warning)."""
    if header_timeout is None:
        return "auto"
    try:
        from uvicorn.protocols.http import flow_control, httptools_impl
    except ImportError as exc:  # httptools missing (not a CPython wheel platform)
        logger.warning("request header timeout disabled: httptools unavailable (%s)", exc)
        return "auto"
    missing = [
        *missing_attributes(
            getattr(httptools_impl, "HttpToolsProtocol", None),
            _REQUIRED_ATTRIBUTES,
            "uvicorn.HttpToolsProtocol",
        ),
        *missing_attributes(
            getattr(httptools_impl, "RequestResponseCycle", None),
            _REQUIRED_CYCLE_ATTRIBUTES,
            "uvicorn.RequestResponseCycle",
        ),
        *missing_attributes(
            getattr(flow_control, "FlowControl", None),
            _REQUIRED_FLOW_ATTRIBUTES,
            "uvicorn.FlowControl",
        ),
    ]
    if missing:
        report_fallback("http", missing, "request header timeout disabled")
        return "auto"
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol, httptools_impl.HttpToolsProtocol),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


class HeaderTimeoutProtocol:
    """Mixin over uvicorn's ``HttpToolsProtocol``: a connection whose request headers are not
    complete ``header_timeout`` seconds after it opened (first request) or after the request
    began (later keep-alive requests) gets ``408`` and is closed.

    The deadline is fixed when the request starts and not moved by more bytes, so trickling one
    byte at a time does not extend it.

    Then, while the request's body arrives, a pause of more than ``body_timeout`` seconds
    between two chunks closes the connection (with ``408`` if no response has started); time
    during which this server stopped reading (flow control) does not count. Uploads have
    their own, shorter idle timeout with a JSON error: this is the backstop for every route."""

    header_timeout: float = 10.0
    body_timeout: float | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    flow: Any
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_seen_at: float = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()  # type: ignore[misc]
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        previous = self.cycle
        super().on_headers_complete()  # type: ignore[misc]
        # A new request cycle (not a WebSocket upgrade): its body, if any, is on its way.
        if self.body_timeout is not None and self.cycle is not previous:
            self._body_seen_at = self.loop.time()
            self._cancel_body_timer()
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)

    def on_body(self, body: bytes) -> None:
        self._body_seen_at = self.loop.time()  # cheaper than a new timer per chunk
        super().on_body(body)  # type: ignore[misc]

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        assert self.body_timeout is not None
        if self.transport.is_closing():
            return
        idle = self.loop.time() - self._body_seen_at
        if idle < self.body_timeout or (self.flow is not None and self.flow.read_paused):
            # Data came meanwhile, or this server paused reading: wait again from the last chunk.
            wait = max(self.body_timeout - idle, 0.05) if idle < self.body_timeout else 1.0
            self._body_timer = self.loop.call_later(wait, self._body_too_slow)
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_BODY_TIMEOUT_RESPONSE)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is still being answered: close after that response.
            self.cycle.keep_alive = False
            return
        self.transport.write(_HEADER_TIMEOUT_RESPONSE)
        self.transport.close()


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files (``RLIMIT_NOFILE``) to its hard limit:
    every connection costs a descriptor, and many hosts start services at a soft 1024.

    :returns: (soft limit before, soft limit after), in descriptors.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at the kernel's nr_open (1048576 by default).
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the open-file limit from %d: %s", soft, exc)
        return soft, soft
    return soft, target
