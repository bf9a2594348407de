"""HTTP routes of co-hosts: the owner's invite links, accepting one, the host list, removing a
co-host or leaving.

Every change here that a session cookie authenticates is a non-GET request, which
:class:`web.origins.CrossOriginGuard` refuses from other origins' pages (403
``cross_origin_refused``) before these handlers run.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from web.accounts.endpoints import PRIVATE, hosted_room_body, signed_in
from web.accounts.schemas import HostedRoomBody
from web.accounts.session_cookie import current_session
from web.rooms.cohosts import IssuedInvite, cohost_not_found, invite_not_found
from web.rooms.endpoints import json_body, require_host, room_for
from web.rooms.invite_repository import Invite
from web.rooms.schemas import (
    HostBody,
    HostList,
    InviteRequest,
    IssuedInviteBody,
    PendingInviteBody,
)
from web.rooms.views import public_base_url
from web.services import services
from web.wire import Answer, Operation, json_answer, parse_body


def _path_id(request: Request, name: str) -> int | None:
    """The path parameter ``name`` as an id, or None when it is not one (ASCII digits,
    within a 64-bit integer)."""
    value = request.path_params[name]
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def issued_invite_body(base_url: str, issued: IssuedInvite) -> IssuedInviteBody:
    """The answer of a new invite: its id, its link under ``base_url`` and its expiry."""
    return IssuedInviteBody(
        invite_id=issued.invite.id,
        url=f"{base_url}/invites/{issued.token}",
        expires_at=issued.invite.expires_at.isoformat(),
    )


def pending_invite_body(invite: Invite) -> PendingInviteBody:
    """An unused invite in the owner's host list."""
    return PendingInviteBody(
        invite_id=invite.id,
        email=invite.email,
        created_at=invite.created_at.isoformat(),
        expires_at=invite.expires_at.isoformat(),
    )


async def create_invite(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await require_host(request, room, "own")
    base_url = public_base_url(request, app.settings, app.lan)
    body = parse_body(InviteRequest, await json_body(request))
    session = await current_session(request)
    issued = await app.cohosts.invite(
        room, body.email, session.account.id if session is not None else None
    )
    return json_answer(issued_invite_body(base_url, issued), status=201, headers=PRIVATE)


async def list_hosts(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    role = await require_host(request, room, "moderate")
    owner_view = role == "owner"
    hosts = [
        HostBody(
            account_id=host.account_id,
            role=host.role,
            name=host.name,
            email=host.email if owner_view else None,
            since=host.since.isoformat(),
        )
        for host in await app.cohosts.hosts(room)
    ]
    invites = (
        [pending_invite_body(invite) for invite in await app.cohosts.pending_invites(room)]
        if owner_view
        else None
    )
    return json_answer(HostList(hosts=hosts, invites=invites), headers=PRIVATE)


async def revoke_invite(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await require_host(request, room, "own")
    invite_id = _path_id(request, "invite_id")
    if invite_id is None:
        raise invite_not_found()
    await app.cohosts.revoke_invite(room, invite_id)
    return Response(status_code=204)


async def accept_invite(request: Request) -> Response:
    app = services(request)
    account = (await signed_in(request)).account
    room = await app.cohosts.accept(request.path_params["invite_token"], account.id)
    (hosted,) = await app.rooms.hosted_by(account.id, room)
    return json_answer(hosted_room_body(hosted), headers=PRIVATE)


async def remove_cohost(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    account_id = _path_id(request, "account_id")
    session = await current_session(request)
    leaving = (
        session is not None
        and not request.headers.get("authorization")
        and account_id == session.account.id
        and room.owner_account_id != account_id
    )
    # A co-host may remove themselves (leave); removing anyone else is the owner's.
    await require_host(request, room, "moderate" if leaving else "own")
    if account_id is None:
        raise cohost_not_found()
    await app.cohosts.remove(room, account_id)
    return Response(status_code=204)


_OWNER_ONLY = {401: ("host_key_required",), 403: ("wrong_host_key", "forbidden")}
_ROOM = {404: ("room_not_found",)}

operations = [
    Operation(
        "POST",
        "/api/rooms/{token}/cohost-invites",
        create_invite,
        "createCohostInvite",
        "Invite a co-host by a single-use link",
        "cohosts",
        {
            201: Answer(
                "The invite: its link (holding its token, answered only here) and expiry.",
                IssuedInviteBody,
            )
        },
        {
            **_OWNER_ONLY,
            400: ("invalid_host",),
            404: ("room_not_found",),
            422: ("invalid_email", "unknown_field"),
        },
        body=InviteRequest,
        security=("hostKey", "sessionCookie"),
        description="The owner only (the host key, or the owner's session). The link is valid "
        "for `IMAGESHARK_COHOST_INVITE_DAYS` (7) and opens once.",
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/cohosts",
        list_hosts,
        "listCohosts",
        "The room's hosts and pending invites",
        "cohosts",
        {
            200: Answer(
                "The hosts; e-mail addresses and pending invites in the owner's view only.",
                HostList,
            )
        },
        {**_OWNER_ONLY, **_ROOM},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "DELETE",
        "/api/rooms/{token}/cohost-invites/{invite_id}",
        revoke_invite,
        "revokeCohostInvite",
        "Revoke an unused invite",
        "cohosts",
        {204: Answer("The invite's link opens nothing any more.")},
        {**_OWNER_ONLY, 404: ("room_not_found", "invite_not_found")},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "POST",
        "/api/invites/{invite_token}/accept",
        accept_invite,
        "acceptCohostInvite",
        "Become a co-host by an invite",
        "cohosts",
        {
            200: Answer(
                "The room as the account's room list shows it, role `cohost`.", HostedRoomBody
            )
        },
        {
            401: ("not_signed_in",),
            404: ("invite_not_found",),
            409: ("invite_used", "already_host"),
            410: ("invite_expired",),
        },
        security=("sessionCookie",),
    ),
    Operation(
        "DELETE",
        "/api/rooms/{token}/cohosts/{account_id}",
        remove_cohost,
        "removeCohost",
        "Remove a co-host, or leave as one",
        "cohosts",
        {
            204: Answer(
                "No longer a co-host: its host actions are refused at once, and its live "
                "host sockets get `host_access_revoked` and are disconnected on every replica."
            )
        },
        {**_OWNER_ONLY, 404: ("room_not_found", "cohost_not_found")},
        security=("hostKey", "sessionCookie"),
        description="The owner removes any co-host; a co-host may remove themselves.",
    ),
]
