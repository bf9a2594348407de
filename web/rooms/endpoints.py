"""HTTP routes of rooms: create, read, host check, QR codes, joining as a participant."""

from __future__ import annotations

import json
import re
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from web.accounts.session_cookie import current_session
from web.errors import ApiError
from web.rooms.qr import qr_payload
from web.rooms.repository import HostRole, Participant, Room
from web.rooms.schemas import (
    CreatedRoom,
    HostRoomView,
    Joined,
    JoinRequest,
    Me,
    MemberRoomView,
    Rename,
    RoomChanges,
    RoomCreation,
    RoomView,
    name_context,
)
from web.rooms.service import (
    ROLE_RIGHTS,
    HostRight,
    Viewer,
    forbidden,
    host_key_required,
    participant_cookie,
)
from web.rooms.views import host_room_view, join_url, public_base_url, room_view
from web.services import Services, services
from web.wire import Answer, Binary, Operation, json_answer, parse_body

MAX_JSON_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request body (the API's own bodies
are one level deep); far below where the json module would raise RecursionError (~1000)."""
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")
PARTICIPANT_HEADER = "x-participant-key"


def not_joined() -> ApiError:
    """A new 401 ``not_joined``."""
    return ApiError(401, "not_joined", "Join the room first (no participant cookie or key).")


def require_json_content_type(request: Request) -> None:
    """Refuse a body not declared ``Content-Type: application/json``.

    A page of another origin can send ``text/plain`` or form bodies without asking the server
    first (no CORS preflight); a JSON body declared as JSON it cannot. No body and no
    ``Content-Type`` (``POST .../close``) passes: it is read as ``{}``.

    :raises ApiError: 415 ``unsupported_media_type``.
    """
    content_type = request.headers.get("content-type")
    if content_type is None:
        if request.headers.get("content-length", "0") == "0" and (
            "transfer-encoding" not in request.headers
        ):
            return
    elif content_type.partition(";")[0].strip().lower() == "application/json":
        return
    raise ApiError(
        415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
    )


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (an empty body counts as ``{}``).

    :raises ApiError: 415 not declared as JSON; 413 over 16 KiB; 400 ``invalid_json`` not
        valid JSON, not UTF-8, nested deeper than :data:`MAX_JSON_DEPTH` or with a key twice;
        422 not an object.
    """
    require_json_content_type(request)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "body_too_large", "The request body is too large.")
    return parse_json_object(bytes(body))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body as one JSON object (RFC 8259 text: UTF-8, strictly).

    :param body: the raw body, at most :data:`MAX_JSON_BYTES` long; empty means ``{}``.
    :raises ApiError: 400 ``invalid_json``, 422 ``invalid_body`` (see :func:`json_body`).
    """
    try:
        # Strict UTF-8: json.loads on bytes would let encoded surrogates through.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "The request body is not UTF-8 text.") from None
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise ApiError(
            400, "invalid_json", f"The request body is nested deeper than {MAX_JSON_DEPTH} levels."
        )
    try:
        value = json.loads(text or "{}", object_pairs_hook=_object_without_repeats)
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, _RepeatedKey) else "not valid JSON"
        raise ApiError(400, "invalid_json", f"The request body is {message}.") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_body", "The request body must be a JSON object.")
    return value


class _RepeatedKey(ValueError):
    pass


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key means different things to different parsers (first or last wins).
    value = dict(pairs)
    if len(value) != len(pairs):
        repeated = next(key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1)
        raise _RepeatedKey(f"invalid: the key {repeated!r} appears twice")
    return value


def _nesting_depth(text: str) -> int:
    """The deepest nesting of brackets in ``text`` outside strings (an upper bound for
    malformed JSON, which is refused anyway)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


async def current_participant(request: Request, room: Room) -> Participant | None:
    """The participant making ``request``: ``X-Participant-Key`` header, else the signed
    cookie; None for neither (or one that does not belong to ``room``)."""
    return await services(request).rooms.participant(
        room,
        key=request.headers.get(PARTICIPANT_HEADER),
        cookie=request.cookies.get(participant_cookie(room)),
    )


async def host_role(request: Request, room: Room) -> HostRole | None:
    """The caller's host role in ``room``: ``owner`` with the room's host key
    (``Authorization: Bearer``), else the role of the session cookie's account (owner,
    co-host), else None."""
    app = services(request)
    if app.rooms.is_host(room, request.headers.get("authorization")):
        return "owner"
    signed_in = await current_session(request)
    if signed_in is None:
        return None
    return await app.rooms.host_role(room, signed_in.account.id)


async def require_host(request: Request, room: Room, right: HostRight) -> HostRole:
    """Admit a host action needing ``right`` (:data:`~web.rooms.service.ROLE_RIGHTS`): the
    room's host key, or the session of one of the room's hosts whose role has that right.
    This is the one host check of every host endpoint.

    :returns: the caller's role (``owner`` for the host key).
    :raises ApiError: 401 ``host_key_required`` with neither a key nor a live session; 403
        ``wrong_host_key`` with a key of another room; 403 ``forbidden`` for an account
        that is none of the room's hosts, or whose role lacks ``right``.
    """
    app = services(request)
    authorization = request.headers.get("authorization")
    if authorization:
        app.rooms.require_host(room, authorization)
        return "owner"
    signed_in = await current_session(request)
    if signed_in is None:
        raise host_key_required()
    role = await app.rooms.host_role(room, signed_in.account.id)
    if role is None or right not in ROLE_RIGHTS[role]:
        raise forbidden()
    return role


async def viewer_of(request: Request, room: Room) -> Viewer:
    """Who makes ``request``: participant and/or host (host key, or an owner's or co-host's
    session).

    :raises ApiError: 401 ``passcode_required`` when the room has a passcode and the caller is
        neither one of its participants nor its host.
    """
    app = services(request)
    viewer = Viewer(
        participant=await current_participant(request, room),
        is_host=await host_role(request, room) is not None,
    )
    app.rooms.require_viewer(room, viewer)
    return viewer


def client_address(request: Request) -> str:
    """The caller's IP address, for per-address rate limits: the peer's, or behind trusted
    proxies the rightmost X-Forwarded-For entry that is not one of them
    (``IMAGESHARK_TRUSTED_PROXIES``, applied to the whole app in :func:`web.app.create_app`)."""
    return request.client.host if request.client else "unknown"


async def host_view(app: Services, request: Request, room: Room, role: HostRole) -> HostRoomView:
    """The host's view of ``room`` (counts read now) for a caller of ``role`` (what
    :func:`require_host` answered), which the view names so a page shows only what that role
    may do."""
    return HostRoomView.model_validate(
        {
            **host_room_view(
                room,
                public_base_url(request, app.settings, app.lan),
                await app.rooms.image_count(room),
                await app.rooms.image_count(room, status="pending"),
                app.qr,
            ),
            "role": role,
            "owned": room.owner_account_id is not None,
        }
    )


async def room_for(request: Request) -> Room:
    """The live room named by the ``token`` path parameter; 404 otherwise."""
    return await services(request).rooms.get(request.path_params["token"])


async def create_room(request: Request) -> Response:
    app = services(request)
    base_url = public_base_url(
        request, app.settings, app.lan
    )  # a bad Host is refused before storing
    signed_in = await current_session(request)
    room, host_key = await app.rooms.create(
        await json_body(request),
        client_address(request),
        owner_account_id=signed_in.account.id if signed_in is not None else None,
    )
    view = host_room_view(room, base_url, image_count=0, pending_count=0, qr=app.qr)
    created = {**view, "host_key": host_key, "role": "owner", "owned": signed_in is not None}
    return json_answer(CreatedRoom.model_validate(created), status=201)


async def passcode_for(request: Request, room: Room) -> str | None:
    """The passcode to add to the room view for the caller of ``request``: the room's
    passcode when the host lets the wall show it (:attr:`Room.wall_passcode`) and the caller
    is its host (``Authorization``) or one of its participants (cookie or key); else None.
    The participant is looked up only when there is a passcode to show."""
    passcode = room.wall_passcode
    if passcode is None:
        return None
    app = services(request)
    viewer = Viewer(
        participant=await current_participant(request, room),
        is_host=await host_role(request, room) is not None,
    )
    return passcode if app.rooms.admits(room, viewer) else None


async def get_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    count = await app.rooms.image_count(room)
    view = room_view(room, public_base_url(request, app.settings, app.lan), count, app.qr)
    passcode = await passcode_for(request, room)
    if passcode is None:
        return json_answer(RoomView.model_validate(view))
    # An answer that depends on the caller's credentials: no cache may keep or share it.
    return json_answer(
        MemberRoomView.model_validate({**view, "passcode": passcode}),
        headers={"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"},
    )


async def get_room_as_host(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    role = await require_host(request, room, "moderate")
    return json_answer(await host_view(app, request, room, role))


async def update_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    role = await require_host(request, room, "wall")
    body = await json_body(request)
    app.rooms.require_rights_for_changes(role, body)
    room = await app.rooms.update(room, body)
    return json_answer(await host_view(app, request, room, role))


async def close_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    role = await require_host(request, room, "own")
    room = await app.rooms.close(room)
    return json_answer(await host_view(app, request, room, role))


async def get_me(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    participant = await current_participant(request, room)
    if participant is None:
        raise not_joined()
    if request.method == "PATCH":
        rename = parse_body(
            Rename, await json_body(request), context=name_context(app.settings.max_name_chars)
        )
        participant = await app.rooms.rename(participant, rename.name)
    count = await app.rooms.upload_count(room, participant)
    limit = room.max_uploads_per_guest
    return json_answer(
        Me(
            id=participant.id,
            name=participant.name,
            upload_count=count,
            max_uploads=limit,
            uploads_left=max(limit - count, 0) if limit is not None else None,
        )
    )


async def room_qr(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    url = qr_payload(join_url(public_base_url(request, app.settings, app.lan), room))
    if request.url.path.endswith(".png"):
        return Response(
            await to_thread.run_sync(app.qr.png, url),
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=3600"},
        )
    return Response(
        await to_thread.run_sync(app.qr.svg, url),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def join_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    body = parse_body(
        JoinRequest, await json_body(request), context=name_context(app.settings.max_name_chars)
    )
    participant, key = await app.rooms.join(
        room,
        body.name,
        body.passcode,
        client_address(request),
        current=await current_participant(request, room),
    )
    response = json_answer(
        Joined(id=participant.id, name=participant.name, participant_key=key), status=201
    )
    seconds_left = int((room.expires_at - app.rooms.clock()).total_seconds())
    response.set_cookie(
        participant_cookie(room),
        app.rooms.participant_cookie_value(participant),
        max_age=max(seconds_left, 0),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


_HOST_ONLY = {401: ("host_key_required",), 403: ("wrong_host_key", "forbidden")}
_ROOM_URLS = {400: ("invalid_host",), 404: ("room_not_found",)}
_QR_CACHE = {"Cache-Control": "`public, max-age=3600`"}

operations = [
    Operation(
        "POST",
        "/api/rooms",
        create_room,
        "createRoom",
        "Create a room",
        "rooms",
        {201: Answer("The room, with its host key (sent only here).", CreatedRoom)},
        {
            400: ("invalid_host",),
            422: ("invalid_title", "invalid_<field>", "unknown_field"),
            429: ("rate_limited",),
        },
        body=RoomCreation,
        security=("anonymous", "sessionCookie"),
        description="With a host's session cookie the new room belongs to that account.",
    ),
    Operation(
        "GET",
        "/api/rooms/{token}",
        get_room,
        "getRoom",
        "Read a room's public view",
        "rooms",
        {
            200: Answer(
                "The public view; with the passcode for the host or a participant when the "
                "room's wall shows it (then `Cache-Control: private, no-store`).",
                RoomView | MemberRoomView,
            )
        },
        _ROOM_URLS,
        security=("anonymous", "hostKey", "sessionCookie", "participantKey", "participantCookie"),
    ),
    Operation(
        "PATCH",
        "/api/rooms/{token}",
        update_room,
        "updateRoom",
        "Change a room's settings",
        "rooms",
        {200: Answer("The host's view after the change; `room_updated` is emitted.", HostRoomView)},
        {
            **_ROOM_URLS,
            **_HOST_ONLY,
            409: ("room_closed",),
            422: ("invalid_<field>", "unknown_field"),
        },
        body=RoomChanges,
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/close",
        close_room,
        "closeRoom",
        "Close a room for good",
        "rooms",
        {
            200: Answer(
                "The host's view of the closed room; `room_closed` is emitted once.", HostRoomView
            )
        },
        {**_ROOM_URLS, **_HOST_ONLY},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/host",
        get_room_as_host,
        "getRoomAsHost",
        "Read the host's view (checks a host key)",
        "rooms",
        {200: Answer("The host's view.", HostRoomView)},
        {**_ROOM_URLS, **_HOST_ONLY},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/qr.png",
        room_qr,
        "getRoomQrPng",
        "The join URL's QR code as PNG",
        "rooms",
        {200: Answer("16 pixels a module, 4-module quiet zone.", Binary("image/png"), _QR_CACHE)},
        _ROOM_URLS,
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/qr.svg",
        room_qr,
        "getRoomQrSvg",
        "The join URL's QR code as SVG",
        "rooms",
        {200: Answer("4-module quiet zone.", Binary("image/svg+xml"), _QR_CACHE)},
        _ROOM_URLS,
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/participants",
        join_room,
        "joinRoom",
        "Join a room as a participant",
        "participants",
        {
            201: Answer(
                "The participant; the key is also set as the HTTP-only cookie "
                "`imageshark_p_<room id>`.",
                Joined,
                {"Set-Cookie": "`imageshark_p_<room id>=...; HttpOnly; SameSite=Lax`"},
            )
        },
        {
            401: ("passcode_required",),
            403: ("wrong_passcode",),
            404: ("room_not_found",),
            409: ("room_closed",),
            422: ("invalid_name", "unknown_field"),
            429: ("rate_limited",),
        },
        body=JoinRequest,
        security=("anonymous", "participantKey", "participantCookie"),
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/me",
        get_me,
        "getMe",
        "The caller as a participant",
        "participants",
        {200: Answer("The participant and their upload quota.", Me)},
        {401: ("not_joined",), 404: ("room_not_found",)},
        security=("participantKey", "participantCookie"),
    ),
    Operation(
        "PATCH",
        "/api/rooms/{token}/me",
        get_me,
        "renameMe",
        "Rename the calling participant",
        "participants",
        {200: Answer("The renamed participant; their uploads list the new name.", Me)},
        {401: ("not_joined",), 404: ("room_not_found",), 422: ("invalid_name", "unknown_field")},
        body=Rename,
        security=("participantKey", "participantCookie"),
    ),
]
routes = [operation.route() for operation in operations]
