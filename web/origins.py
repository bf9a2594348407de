"""Which browser origins may use the service, and the guard that refuses the others' changes.

A guest's participant cookie goes with every request the guest's browser makes to the service,
including those a page of another origin makes: a sibling subdomain, or another port of the same
host, is the same *site*, so SameSite does not hold the cookie back. Such a page must neither
read a passcode room's live events nor change anything in the guest's name. Two checks do that:

- the Socket.IO handshake (WebSocket and long-polling) is refused when its ``Origin`` is not
  allowed (:meth:`OriginPolicy.allows_handshake`, python-engineio's ``cors_allowed_origins``);
- a state-changing HTTP request (any method but GET, HEAD, OPTIONS) that a browser sent from a
  page of another origin is refused with 403 ``cross_origin_refused`` (:class:`CrossOriginGuard`),
  unless it authenticates with a header (``Authorization``, ``X-Participant-Key``): a page of
  another origin cannot send those without a CORS preflight, which this service never grants.

A browser names the page's origin in ``Origin`` (sent with every non-GET request and every
WebSocket handshake) and, in current browsers, the relation in ``Sec-Fetch-Site``. Programs
(curl, scripts, the python-socketio client) send neither, and are not affected. The allowed
origins are the service's own (``IMAGESHARK_PUBLIC_BASE_URL``'s, and the one the request was
addressed to: its scheme and ``Host``) and ``IMAGESHARK_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from web.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER_CREDENTIALS = (b"authorization", b"x-participant-key")
OTHER_SITE_FETCHES = frozenset({"same-site", "cross-site"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def normalise_origin(value: str) -> str | None:
    """``value`` as a browser writes an ``Origin``: ``scheme://host[:port]``, lower case, no
    default port, no path.

    :param value: an origin or a URL (``https://Photos.example.org:443/any/path``).
    :returns: e.g. ``"https://photos.example.org"``; None when ``value`` is not an http(s) URL
        with a host (``"null"``, ``"*"``, a bare host name).
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers of ``scope`` by lower-case name (the first of repeated ones)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name, value)
    return found


class OriginPolicy:
    """The origins whose browser pages may use the service.

    :param public_base_url: ``IMAGESHARK_PUBLIC_BASE_URL`` (its origin is allowed), or None.
    :param allowed_origins: further allowed origins (``IMAGESHARK_ALLOWED_ORIGINS``), each an
        origin or URL as :func:`normalise_origin` accepts.
    """

    def __init__(self, public_base_url: str | None, allowed_origins: Iterable[str]) -> None:
        listed = {normalise_origin(origin) for origin in allowed_origins}
        if public_base_url:
            listed.add(normalise_origin(public_base_url))
        self.listed = frozenset(origin for origin in listed if origin is not None)

    @staticmethod
    def addressed_origin(scope: Scope, headers: Mapping[bytes, bytes]) -> str | None:
        """The origin the request was addressed to: its scheme (after a trusted proxy's
        ``X-Forwarded-Proto``) and its ``Host`` header; None without a ``Host``."""
        host = headers.get(b"host")
        if not host:
            return None
        scheme = _HTTP_SCHEMES.get(str(scope.get("scheme", "http")), "http")
        return normalise_origin(f"{scheme}://{host.decode('latin-1')}")

    def allows(self, origin: str | None, scope: Scope) -> bool:
        """Whether a page of ``origin`` (an ``Origin`` header's value) may use the service
        through the request of ``scope``."""
        if origin is None:
            return False
        clean = normalise_origin(origin)
        if clean is None:
            return False
        return clean in self.listed or clean == self.addressed_origin(scope, _headers(scope))

    def allows_handshake(self, origin: str | None, environ: dict[str, Any]) -> bool:
        """python-engineio's ``cors_allowed_origins`` callable: whether a Socket.IO request
        with ``Origin: origin`` is accepted (engineio refuses the others with 400 and sends
        CORS headers only for accepted ones). ``environ`` is the engineio ASGI driver's, which
        holds the ASGI scope under ``asgi.scope``."""
        return self.allows(origin, environ["asgi.scope"])

    def refusal(self, scope: Scope) -> str | None:
        """Why the HTTP request of ``scope`` must be refused as made by a page of another
        origin, or None to let it through.

        Let through: safe methods; requests authenticated by header; requests whose ``Origin``
        is allowed; requests without ``Origin`` whose ``Sec-Fetch-Site`` (if any) says the page
        is this origin's or none (programs send neither header).
        """
        if scope["method"] in SAFE_METHODS:
            return None
        headers = _headers(scope)
        if any(headers.get(name) for name in HEADER_CREDENTIALS):
            return None
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            if self.allows(text, scope):
                return None
            return f"Changes from pages of {text} are not accepted by this service."
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        if site in OTHER_SITE_FETCHES:
            return "Changes from pages of other origins are not accepted by this service."
        return None


class CrossOriginGuard:
    """ASGI middleware refusing state-changing requests made by pages of other origins, with
    403 ``cross_origin_refused`` (see :meth:`OriginPolicy.refusal`), before the app reads them.

    :param app: the wrapped ASGI app.
    :param policy: the allowed origins.
    """

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = self.policy.refusal(scope)
            if reason is not None:
                response = error_response(403, "cross_origin_refused", reason)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
