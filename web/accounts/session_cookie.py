"""The session cookie: its name and attributes, and the session a request carries.

The cookie holds the session's random token (256 bits; the database keeps only its SHA-256).
It is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (other sites' pages do not send it
with their POSTs) and ``Secure`` when the request came over TLS or the public base URL is
https. Changes made with it from other origins' pages are refused by
:class:`web.origins.CrossOriginGuard` before any endpoint runs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from web.accounts.repository import SignedIn
from web.accounts.service import SESSION_COOKIE
from web.services import services

__all__ = ["SESSION_COOKIE", "clear_session_cookie", "current_session", "set_session_cookie"]
_RESOLVED = "imageshark.signed_in"
"""The scope key the looked-up session is kept under (the scope is the request's own; the
lifespan's ``state`` may be shared between requests)."""


def secure_cookie(request: Request) -> bool:
    """Whether cookies set in answer to ``request`` get ``Secure``: it came over https (after
    a trusted proxy's ``X-Forwarded-Proto``), or ``IMAGESHARK_PUBLIC_BASE_URL`` is https."""
    base_url = services(request).settings.public_base_url or ""
    return request.url.scheme == "https" or base_url.lower().startswith("https://")


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    """Put the session ``token`` in ``response``'s cookie, for ``IMAGESHARK_SESSION_DAYS``."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(services(request).accounts.session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Make the browser drop its session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookie(request)
    )


async def current_session(request: Request) -> SignedIn | None:
    """The live session of ``request``'s cookie and its account, or None (no cookie, or one
    that is forged, ended, expired or of a disabled account). Looked up once per request."""
    scope = request.scope
    if _RESOLVED not in scope:
        token = request.cookies.get(SESSION_COOKIE)
        scope[_RESOLVED] = await services(request).accounts.resolve(token) if token else None
    found = scope[_RESOLVED]
    assert found is None or isinstance(found, SignedIn)
    return found
