"""Server-rendered pages: landing, participant (the join URL), wall, host and table cards; the
account's sign-in, sign-up, account and rooms (dashboard) pages; the pages of mailed account
links (address verification, password reset); the instance admin page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from web.accounts.repository import Account
from web.accounts.schemas import MIN_PASSWORD_CHARS
from web.accounts.session_cookie import current_session
from web.admin.endpoints import admin_account_body, admin_room_body
from web.admin.service import MAX_PAGE
from web.rooms.endpoints import client_address
from web.rooms.table_card import table_card_context
from web.rooms.views import public_base_url, room_view
from web.services import services

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

# Pages render user-supplied titles and captions; autoescaping is on for .html templates, and
# this policy keeps any injected markup from running script or loading foreign content.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page_csp(store_origins: tuple[str, ...] = ()) -> str:
    """:data:`CSP` letting the page also connect to (direct uploads) and load images from
    (presigned redirects, the media base URL) the object store's ``store_origins``
    (:attr:`web.object_media.ObjectMedia.browser_origins`); exactly :data:`CSP` without any."""
    if not store_origins:
        return CSP
    extra = " ".join(store_origins)
    return CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {extra}").replace(
        "connect-src 'self' ws: wss:", f"connect-src 'self' ws: wss: {extra}"
    )


def _store_origins(request: Request) -> tuple[str, ...]:
    origins = getattr(services(request).media, "browser_origins", ())
    return tuple(origins)


def _headers(request: Request) -> dict[str, str]:
    """:data:`SECURITY_HEADERS` with this service's object store in the CSP."""
    origins = _store_origins(request)
    if not origins:
        return SECURITY_HEADERS
    return {**SECURITY_HEADERS, "Content-Security-Policy": page_csp(origins)}


# Pages that depend on who is signed in: no cache may keep or share them.
PRIVATE_PAGE = {"Cache-Control": "private, no-store", "Vary": "Cookie"}


async def signed_in_account(request: Request) -> Account | None:
    """The account of the request's live session cookie, or None (the header's signed-in
    indicator; landing, host and account pages only, the wall and guest pages never ask)."""
    found = await current_session(request)
    return found.account if found is not None else None


async def landing(request: Request) -> Response:
    context = {"account": await signed_in_account(request)}
    return templates.TemplateResponse(
        request, "landing.html", context, headers={**SECURITY_HEADERS, **PRIVATE_PAGE}
    )


def safe_next(value: str | None, default: str = "/rooms") -> str:
    """Where to go after signing in: ``value`` when it is a path of this site (``/...``, not
    ``//host`` nor ``/\\host``, which browsers read as another host, nor with control
    characters), else ``default``."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    ):
        return default
    return value


async def sign_in_page(request: Request) -> Response:
    """``GET /signin``: the sign-in form; ``?next=`` (a same-origin path) is where it goes
    after signing in, ``/rooms`` otherwise. With organisation sign-on configured, also its
    button: a link to ``/api/oidc/start`` with the same ``return_to``."""
    settings = services(request).settings
    target = safe_next(request.query_params.get("next"))
    context = {
        "account": await signed_in_account(request),
        "next": target,
        "sign_on": (
            {
                "url": f"/api/oidc/start?{urlencode({'return_to': target})}",
                "label": settings.oidc_button_label,
            }
            if settings.oidc_enabled
            else None
        ),
    }
    return templates.TemplateResponse(
        request, "signin.html", context, headers={**SECURITY_HEADERS, **PRIVATE_PAGE}
    )


async def sign_up_page(request: Request) -> Response:
    """``GET /signup``: the sign-up form, with the password's minimum length the API enforces
    (:data:`web.accounts.schemas.MIN_PASSWORD_CHARS`)."""
    context = {
        "account": await signed_in_account(request),
        "min_password_chars": MIN_PASSWORD_CHARS,
    }
    return templates.TemplateResponse(
        request, "signup.html", context, headers={**SECURITY_HEADERS, **PRIVATE_PAGE}
    )


async def _account_page(request: Request, template: str) -> Response:
    """Render ``template`` for the signed-in account, or redirect (303) to ``/signin`` with
    this page as ``next``."""
    account = await signed_in_account(request)
    if account is None:
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
    return templates.TemplateResponse(
        request, template, {"account": account}, headers={**SECURITY_HEADERS, **PRIVATE_PAGE}
    )


async def account_page(request: Request) -> Response:
    """``GET /account``: the account's name, e-mail and sessions (filled in by
    ``static/js/account.js``); signed out: redirected to ``/signin``."""
    return await _account_page(request, "account.html")


async def rooms_page(request: Request) -> Response:
    """``GET /rooms``: the dashboard of the account's rooms, kept live by
    ``static/js/dashboard.js``; signed out: redirected to ``/signin``."""
    return await _account_page(request, "rooms.html")


# Most photos the read-only gallery of an ended room shows (the API pages through the rest).
GALLERY_LIMIT = 200

# The host page warns when the room expires within this long.
EXPIRY_WARNING = timedelta(days=7)


async def room_page(request: Request, template: str) -> Response:
    """Render ``template`` for the room named by the path's token (see :func:`_render_room`)."""
    return await _render_room(request, request.path_params["token"], template)


async def table_card_page(request: Request) -> Response:
    """``GET /r/{token}/card``: the printable A4 sheet of four table cards (QR code, join
    address and code), answered like the other room pages (410 when ended, else 404)."""
    return await _render_room(
        request, request.path_params["token"], "table_card.html", extra=table_card_context
    )


def wall_context(view: dict[str, Any]) -> dict[str, Any]:
    """What ``wall.html`` needs besides the room's public ``view``: the typeable fallback its
    "scan to join" intermission shows beside the QR code, worded as the table card prints it
    (:func:`web.rooms.table_card.table_card_context`): ``{"join_address", "site_address",
    "grouped_code"}`` (the last two None for a room without a short code)."""
    card = table_card_context(view)
    return {key: card[key] for key in ("join_address", "site_address", "grouped_code")}


async def wall_page(request: Request) -> Response:
    """``GET /r/{token}/wall``: the projector page, answered like the other room pages."""
    return await _render_room(
        request, request.path_params["token"], "wall.html", extra=wall_context
    )


async def _render_room(
    request: Request,
    token: str,
    template: str,
    *,
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """Render ``template`` for the room with ``token``; ``extra`` adds to the template's
    context what it computes from the room's public view.

    An expired room's pages answer 410 with a page naming the room and when it ended (during
    its read-only grace, the participant page adds the gallery, up to :data:`GALLERY_LIMIT`
    photos, unless the room has a passcode); an
    unknown or malformed token answers the 404 page. The host page gets ``expiry_warning``
    (``{"expires_at": ISO 8601, "longest_hours": float}``) when the room expires within
    :data:`EXPIRY_WARNING`, else None.
    """
    app = services(request)
    room = await app.rooms.find(token)
    if room is None:
        ended = await app.rooms.find_ended(token)
        if ended is not None:
            grace_until = None
            gallery: list[dict[str, Any]] = []
            if ended.in_grace(app.rooms.clock()) and ended.gallery_grace_days:
                grace_until = ended.expires_at + timedelta(days=ended.gallery_grace_days)
                if template == "participant.html" and ended.passcode is None:
                    page = await app.images.page(ended, None, str(GALLERY_LIMIT))
                    gallery = page["items"]
            return templates.TemplateResponse(
                request,
                "room_ended.html",
                {
                    "title": ended.title,
                    "ended_at": ended.expires_at,
                    "grace_until": grace_until,
                    "gallery": gallery,
                    "passcode": ended.passcode is not None,
                },
                status_code=410,
                headers=_headers(request),
            )
        return not_found(request)
    count = await app.rooms.image_count(room)
    view = room_view(room, public_base_url(request, app.settings, app.lan), count, app.qr)
    warning = None
    if room.closed_at is None and room.expires_at - app.rooms.clock() <= EXPIRY_WARNING:
        warning = {
            "expires_at": room.expires_at.isoformat(),
            "longest_hours": app.settings.room_ttl_hours,
        }
    context: dict[str, Any] = {"room": view, "expiry_warning": warning}
    headers = _headers(request)
    if template == "host.html":
        context["account"] = await signed_in_account(request)
        headers = {**headers, **PRIVATE_PAGE}
    if extra is not None:
        context.update(extra(view))
    return templates.TemplateResponse(request, template, context, headers=headers)


async def code_page(request: Request) -> Response:
    """``GET /j/{code}``: the participant page of the room with that short code (any case),
    the ended page of an expired one (as ``/r/{token}``), or the 404 page; lookups are
    throttled per client address (429 JSON error beyond)."""
    app = services(request)
    room = await app.rooms.find_by_code(
        request.path_params["code"], client_address(request), include_ended=True
    )
    if room is None:
        return not_found(request)
    return await _render_room(request, room.token, "participant.html")


async def admin_page(request: Request) -> Response:
    """``GET /admin``: every room (newest :data:`~web.admin.service.MAX_PAGE`) with its size
    and owner, and every account, for an admin's session. Signed out: 200 with a sign-in
    form; signed in without admin rights: 403 saying so, with the same form. Never cached."""
    app = services(request)
    found = await current_session(request)
    headers = {**SECURITY_HEADERS, "Cache-Control": "private, no-store"}
    context: dict[str, Any] = {"account": found.account if found else None}
    if found is None or not found.account.is_admin:
        status = 200 if found is None else 403
        return templates.TemplateResponse(
            request, "admin.html", context, status_code=status, headers=headers
        )
    rooms = await app.admin.rooms_page(None, MAX_PAGE)
    accounts = await app.admin.accounts_page(None, MAX_PAGE)
    now = app.rooms.clock()
    context.update(
        rooms=[admin_room_body(room, now) for room in rooms],
        more_rooms=len(rooms) == MAX_PAGE,
        accounts=[admin_account_body(entry) for entry in accounts],
        more_accounts=len(accounts) == MAX_PAGE,
        invites=app.settings.signup == "invite",
    )
    return templates.TemplateResponse(request, "admin.html", context, headers=headers)


async def verify_page(request: Request) -> Response:
    """``GET /verify?token=``: the page of an address verification link; its script posts the
    token to ``POST /api/accounts/verify`` (the token is never rendered into the page)."""
    return templates.TemplateResponse(request, "verify.html", {}, headers=SECURITY_HEADERS)


async def reset_page(request: Request) -> Response:
    """``GET /reset?token=``: the page of a password reset link: a new-password form its
    script posts with the token to ``POST /api/password-reset/confirm``."""
    return templates.TemplateResponse(request, "reset.html", {}, headers=SECURITY_HEADERS)


def not_found(request: Request) -> Response:
    """The 404 page of an unknown or expired room."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": 404, "message": "This room does not exist or has expired."},
        status_code=404,
        headers=SECURITY_HEADERS,
    )


def _page(path: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Route:
    """An HTML page's route: ``GET`` only, and left out of the OpenAPI document (a page, not
    an API operation)."""
    return Route(path, endpoint, methods=["GET"], include_in_schema=False)


routes = [
    _page("/", landing),
    _page("/signin", sign_in_page),
    _page("/signup", sign_up_page),
    _page("/account", account_page),
    _page("/rooms", rooms_page),
    _page("/j/{code}", code_page),
    _page("/J/{code}", code_page),
    _page("/r/{token}", partial(room_page, template="participant.html")),
    _page("/r/{token}/wall", wall_page),
    _page("/r/{token}/host", partial(room_page, template="host.html")),
    _page("/r/{token}/card", table_card_page),
    _page("/admin", admin_page),
    _page("/verify", verify_page),
    _page("/reset", reset_page),
]
