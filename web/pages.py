"""Server-rendered pages: landing, participant (the join URL), wall and host."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

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
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": 404, "message": "This room does not exist or has expired."},
            status_code=404,
            headers=SECURITY_HEADERS,
        )
    count = await app.rooms.repository.image_count(room.id)
    view = room_view(room, public_base_url(request, app.settings), count)
    return templates.TemplateResponse(request, template, {"room": view}, headers=SECURITY_HEADERS)


routes = [
    Route("/", landing, methods=["GET"]),
    Route("/r/{token}", partial(room_page, template="participant.html"), methods=["GET"]),
    Route("/r/{token}/wall", partial(room_page, template="wall.html"), methods=["GET"]),
    Route("/r/{token}/host", partial(room_page, template="host.html"), methods=["GET"]),
]
