"""HTTP routes of instance administration (``/api/admin/...``): an admin's session only.

A request without a live session answers 401 ``not_signed_in``, one of an account that is no
admin 403 ``forbidden``. Changes are non-GET requests, which
:class:`web.origins.CrossOriginGuard` refuses from other origins' pages.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from web.accounts.endpoints import PRIVATE, signed_in
from web.accounts.repository import Account
from web.admin.repository import AdminAccount, AdminRoom
from web.admin.schemas import (
    AdminAccountBody,
    AdminAccountList,
    AdminRoomBody,
    AdminRoomList,
    InviteBody,
    RoomState,
)
from web.admin.service import MAX_PAGE, account_not_found, page_bounds
from web.services import services
from web.wire import Answer, Operation, Parameter, Security, json_answer


async def signed_in_admin(request: Request) -> Account:
    """The admin account of the request's live session.

    :raises ApiError: 401 ``not_signed_in``; 403 ``forbidden`` (no admin).
    """
    account = (await signed_in(request)).account
    services(request).admin.require_admin(account)
    return account


def room_state(room: AdminRoom, now: datetime) -> RoomState:
    """``expired`` past its expiry, else ``closed`` once closed, else ``open``."""
    if room.expires_at <= now:
        return "expired"
    return "closed" if room.closed_at is not None else "open"


def admin_room_body(room: AdminRoom, now: datetime) -> AdminRoomBody:
    """One entry of the admin room list."""
    return AdminRoomBody(
        token=room.token,
        title=room.title,
        created_at=room.created_at.isoformat(),
        expires_at=room.expires_at.isoformat(),
        state=room_state(room, now),
        owner_email=room.owner_email,
        image_count=room.image_count,
        stored_bytes=room.stored_bytes,
        participant_count=room.participant_count,
        last_activity_at=room.last_activity_at.isoformat(),
    )


def admin_account_body(entry: AdminAccount) -> AdminAccountBody:
    """One entry of the admin account list."""
    account = entry.account
    return AdminAccountBody(
        id=account.id,
        email=account.email,
        name=account.name,
        is_admin=account.is_admin,
        disabled=account.disabled,
        created_at=account.created_at.isoformat(),
        owned_rooms=entry.owned_rooms,
    )


async def list_rooms(request: Request) -> Response:
    await signed_in_admin(request)
    app = services(request)
    after, limit = page_bounds(request.query_params.get("after"), request.query_params.get("limit"))
    found = await app.admin.rooms_page(after, limit)
    now = app.rooms.clock()
    return json_answer(
        AdminRoomList(
            rooms=[admin_room_body(room, now) for room in found],
            next_after=str(found[-1].id) if len(found) == limit else None,
        ),
        headers=PRIVATE,
    )


async def close_room(request: Request) -> Response:
    admin = await signed_in_admin(request)
    app = services(request)
    await app.admin.close_room(admin, request.path_params["token"])
    return Response(status_code=204)


async def delete_room(request: Request) -> Response:
    admin = await signed_in_admin(request)
    await services(request).admin.delete_room(admin, request.path_params["token"])
    return Response(status_code=204)


async def list_accounts(request: Request) -> Response:
    await signed_in_admin(request)
    app = services(request)
    after, limit = page_bounds(request.query_params.get("after"), request.query_params.get("limit"))
    found = await app.admin.accounts_page(after, limit)
    return json_answer(
        AdminAccountList(
            accounts=[admin_account_body(entry) for entry in found],
            next_after=str(found[-1].account.id) if len(found) == limit else None,
        ),
        headers=PRIVATE,
    )


def _account_id(request: Request) -> int:
    text = request.path_params["account_id"]
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise account_not_found()
    return int(text)


async def disable_account(request: Request) -> Response:
    admin = await signed_in_admin(request)
    await services(request).admin.disable_account(admin, _account_id(request))
    return Response(status_code=204)


async def enable_account(request: Request) -> Response:
    admin = await signed_in_admin(request)
    await services(request).admin.enable_account(admin, _account_id(request))
    return Response(status_code=204)


async def create_invite(request: Request) -> Response:
    admin = await signed_in_admin(request)
    invite = await services(request).admin.new_invite(admin)
    return json_answer(
        InviteBody(invite=invite.token, expires_at=invite.expires_at.isoformat()),
        status=201,
        headers=PRIVATE,
    )


_ADMIN_ONLY = {401: ("not_signed_in",), 403: ("forbidden",)}
_PAGE = (
    Parameter(
        "after",
        "query",
        "The previous page's `next_after` (default: from the start).",
        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    ),
    Parameter(
        "limit",
        "query",
        "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    ),
)
_PAGE_ERRORS = {422: ("invalid_after", "invalid_limit")}
_SESSION: tuple[Security, ...] = ("sessionCookie",)

operations = [
    Operation(
        "GET",
        "/api/admin/rooms",
        list_rooms,
        "adminListRooms",
        "Every room, with its size and owner",
        "admin",
        {200: Answer("Rooms newest first, expired ones too.", AdminRoomList)},
        {**_ADMIN_ONLY, **_PAGE_ERRORS},
        parameters=_PAGE,
        security=_SESSION,
    ),
    Operation(
        "POST",
        "/api/admin/rooms/{token}/close",
        close_room,
        "adminCloseRoom",
        "Close a room (abuse handling)",
        "admin",
        {204: Answer("Closed, as its host closing it: `room_closed` is emitted once.")},
        _ADMIN_ONLY,
        security=_SESSION,
    ),
    Operation(
        "DELETE",
        "/api/admin/rooms/{token}",
        delete_room,
        "adminDeleteRoom",
        "Delete a room, its photos and their files",
        "admin",
        {204: Answer("Closed (`room_closed` to its live clients), then deleted with its files.")},
        _ADMIN_ONLY,
        security=_SESSION,
    ),
    Operation(
        "GET",
        "/api/admin/accounts",
        list_accounts,
        "adminListAccounts",
        "Every account",
        "admin",
        {200: Answer("Accounts oldest first.", AdminAccountList)},
        {**_ADMIN_ONLY, **_PAGE_ERRORS},
        parameters=_PAGE,
        security=_SESSION,
    ),
    Operation(
        "POST",
        "/api/admin/accounts/{account_id}/disable",
        disable_account,
        "adminDisableAccount",
        "Disable an account",
        "admin",
        {204: Answer("Disabled: every session of it ends at once, it cannot sign in.")},
        {**_ADMIN_ONLY, 404: ("account_not_found",), 409: ("cannot_disable_self",)},
        security=_SESSION,
    ),
    Operation(
        "POST",
        "/api/admin/accounts/{account_id}/enable",
        enable_account,
        "adminEnableAccount",
        "Enable a disabled account",
        "admin",
        {204: Answer("It may sign in again.")},
        {**_ADMIN_ONLY, 404: ("account_not_found",)},
        security=_SESSION,
    ),
    Operation(
        "POST",
        "/api/admin/signup-invites",
        create_invite,
        "adminCreateInvite",
        "Issue a single-use sign-up invite",
        "admin",
        {201: Answer("The invite, usable once within 7 days.", InviteBody)},
        {**_ADMIN_ONLY, 409: ("invites_not_enabled",)},
        security=_SESSION,
    ),
]
