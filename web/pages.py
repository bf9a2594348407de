"""Server-rendered pages: landing, participant (the join URL), wall and host."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from web.rooms.endpoints import client_address
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


async def landing(request: Request) -> Response:
    return templates.TemplateResponse(request, "landing.html", {}, headers=SECURITY_HEADERS)


async def room_page(request: Request, template: str) -> Response:
    """Render ``template`` for the room named by the path's token, or a 404 page."""
    app = services(request)
    room = await app.rooms.find(request.path_params["token"])
    if room is None:
        return not_found(request)
    count = await app.rooms.repository.image_count(room.id)
    view = room_view(room, public_base_url(request, app.settings), count)
    return templates.TemplateResponse(request, template, {"room": view}, headers=SECURITY_HEADERS)


async def code_page(request: Request) -> Response:
    """``GET /j/{code}``: the participant page of the room with that short code (any case),
    or the 404 page; lookups are throttled per client address (429 JSON error beyond)."""
    app = services(request)
    room = await app.rooms.find_by_code(request.path_params["code"], client_address(request))
    if room is None:
        return not_found(request)
    count = await app.rooms.repository.image_count(room.id)
    view = room_view(room, public_base_url(request, app.settings), count)
    return templates.TemplateResponse(
        request, "participant.html", {"room": view}, headers=SECURITY_HEADERS
    )


def not_found(request: Request) -> Response:
    """The 404 page of an unknown or expired room."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": 404, "message": "This room does not exist or has expired."},
        status_code=404,
        headers=SECURITY_HEADERS,
    )


routes = [
    Route("/", landing, methods=["GET"]),
    Route("/j/{code}", code_page, methods=["GET"]),
    Route("/J/{code}", code_page, methods=["GET"]),
    Route("/r/{token}", partial(room_page, template="participant.html"), methods=["GET"]),
    Route("/r/{token}/wall", partial(room_page, template="wall.html"), methods=["GET"]),
    Route("/r/{token}/host", partial(room_page, template="host.html"), methods=["GET"]),
]
