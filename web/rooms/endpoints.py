"""HTTP routes of rooms: create, read, host check, QR codes, joining as a participant."""

from __future__ import annotations

import json
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.errors import ApiError
from web.rooms.qr import qr_png, qr_svg
from web.rooms.repository import Participant, Room
from web.rooms.views import join_url, public_base_url, room_view
from web.services import services

MAX_JSON_BYTES = 16 * 1024
PARTICIPANT_HEADER = "x-participant-key"


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body.

    :raises ApiError: 413 over 16 KiB, 400 not valid JSON, 422 not an object.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "body_too_large", "The request body is too large.")
    try:
        value = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_body", "The request body must be a JSON object.")
    return value


def participant_cookie(room: Room) -> str:
    """Name of the HTTP-only cookie that carries a participant key for ``room``."""
    return f"imageshark_p_{room.id}"


async def current_participant(request: Request, room: Room) -> Participant | None:
    """The participant making ``request``: ``X-Participant-Key`` header, else the cookie."""
    key = request.headers.get(PARTICIPANT_HEADER) or request.cookies.get(participant_cookie(room))
    return await services(request).rooms.participant(room, key)


async def room_for(request: Request) -> Room:
    """The live room named by the ``token`` path parameter; 404 otherwise."""
    return await services(request).rooms.get(request.path_params["token"])


async def create_room(request: Request) -> Response:
    app = services(request)
    body = await json_body(request)
    room, host_key = await app.rooms.create(body.get("title"))
    view = room_view(room, public_base_url(request, app.settings), image_count=0)
    return JSONResponse({**view, "host_key": host_key}, status_code=201)


async def get_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    count = await app.rooms.repository.image_count(room.id)
    return JSONResponse(room_view(room, public_base_url(request, app.settings), count))


async def get_room_as_host(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    app.rooms.require_host(room, request.headers.get("authorization"))
    count = await app.rooms.repository.image_count(room.id)
    return JSONResponse(room_view(room, public_base_url(request, app.settings), count))


async def room_qr(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    url = join_url(public_base_url(request, app.settings), room)
    if request.url.path.endswith(".png"):
        return Response(
            await to_thread.run_sync(qr_png, url),
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=3600"},
        )
    return Response(
        await to_thread.run_sync(qr_svg, url),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def join_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    body = await json_body(request)
    participant, key = await app.rooms.join(room, body.get("name"))
    response = JSONResponse(
        {"id": participant.id, "name": participant.name, "participant_key": key},
        status_code=201,
    )
    seconds_left = int((room.expires_at - app.rooms.clock()).total_seconds())
    response.set_cookie(
        participant_cookie(room),
        key,
        max_age=max(seconds_left, 0),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


routes = [
    Route("/api/rooms", create_room, methods=["POST"]),
    Route("/api/rooms/{token}", get_room, methods=["GET"]),
    Route("/api/rooms/{token}/host", get_room_as_host, methods=["GET"]),
    Route("/api/rooms/{token}/qr.png", room_qr, methods=["GET"]),
    Route("/api/rooms/{token}/qr.svg", room_qr, methods=["GET"]),
    Route("/api/rooms/{token}/participants", join_room, methods=["POST"]),
]
