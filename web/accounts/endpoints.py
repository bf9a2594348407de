"""HTTP routes of host accounts: sign-up, address verification, password reset, sign-in and
out, the account, its sessions and rooms, and claiming a room with its host key.

Every change here that a session cookie authenticates is a non-GET request, which
:class:`web.origins.CrossOriginGuard` refuses from other origins' pages (403
``cross_origin_refused``) before these handlers run.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.accounts.oidc import VerifiedIdentity
from web.accounts.repository import Account, SignedIn
from web.accounts.schemas import (
    AccountBody,
    AccountChanges,
    HostedRoomBody,
    HostedRoomList,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    SessionBody,
    SessionList,
    SignIn,
    SignUp,
    VerifyEmail,
)
from web.accounts.service import not_signed_in
from web.accounts.session_cookie import (
    SESSION_COOKIE,
    clear_session_cookie,
    current_session,
    set_session_cookie,
)
from web.errors import ApiError
from web.rooms import repository as room_rows
from web.rooms.endpoints import client_address, json_body, room_for
from web.rooms.views import request_base_url
from web.services import services
from web.wire import Answer, Operation, json_answer, parse_body

PRIVATE = {"Cache-Control": "private, no-store"}
"""Answers about the caller's account: no cache may keep or share them."""


def account_body(account: Account) -> AccountBody:
    """The account as its holder sees it."""
    return AccountBody(
        email=account.email,
        name=account.name,
        email_verified=account.email_verified,
        is_admin=account.is_admin,
        created_at=account.created_at.isoformat(),
        notify_pending=account.notify_pending,
    )


def hosted_room_body(hosted: room_rows.HostedRoom) -> HostedRoomBody:
    """One entry of the account's room list."""
    room = hosted.room
    return HostedRoomBody(
        token=room.token,
        code=room.code,
        title=room.title,
        role=hosted.role,
        created_at=room.created_at.isoformat(),
        expires_at=room.expires_at.isoformat(),
        closed=room.closed_at is not None,
        photo_count=hosted.photo_count,
        pending_count=hosted.pending_count,
        participant_count=hosted.participant_count,
        last_activity_at=hosted.last_activity_at.isoformat(),
    )


async def signed_in(request: Request) -> SignedIn:
    """The request's live session.

    :raises ApiError: 401 ``not_signed_in`` without one (no cookie, or a forged, ended,
        expired or disabled account's one).
    """
    found = await current_session(request)
    if found is None:
        raise not_signed_in()
    return found


async def sign_up(request: Request) -> Response:
    app = services(request)
    created = await app.accounts.sign_up(
        await json_body(request), client_address(request), request_base_url(request, app.settings)
    )
    body = AccountBody(
        email=created.email,
        name=created.name,
        email_verified=False,
        is_admin=False,
        created_at=created.created_at.isoformat(),
    )
    return json_answer(body, status=201, headers=PRIVATE)


async def verify_email(request: Request) -> Response:
    app = services(request)
    account = await app.accounts.verify_email(await json_body(request))
    return json_answer(account_body(account), headers=PRIVATE)


async def resend_verification(request: Request) -> Response:
    app = services(request)
    account = (await signed_in(request)).account
    await app.accounts.resend_verification(account, request_base_url(request, app.settings))
    return Response(status_code=202, headers=PRIVATE)


RESET_ACCEPTED = PasswordResetAccepted(
    message="If this address has an account, a link to choose a new password is on its way."
)
"""The one answer of ``POST /api/password-reset``, whether or not the address has an account."""


async def request_password_reset(request: Request) -> Response:
    app = services(request)
    await app.accounts.request_password_reset(
        await json_body(request), client_address(request), request_base_url(request, app.settings)
    )
    return json_answer(RESET_ACCEPTED, status=202, headers=PRIVATE)


async def confirm_password_reset(request: Request) -> Response:
    app = services(request)
    account = await app.accounts.confirm_password_reset(await json_body(request))
    response = json_answer(account_body(account), headers=PRIVATE)
    # This browser's session, if any, ended with all the others.
    clear_session_cookie(response, request)
    return response


async def sign_in(request: Request) -> Response:
    app = services(request)
    session, token = await app.accounts.sign_in(
        await json_body(request), client_address(request), request.headers.get("user-agent")
    )
    # The browser's cookie is replaced: the session it held would linger unused until expiry.
    replaced = await current_session(request)
    if replaced is not None:
        await app.accounts.sign_out(replaced)
    response = json_answer(account_body(session.account), headers=PRIVATE)
    set_session_cookie(response, request, token)
    return response


async def sign_out(request: Request) -> Response:
    app = services(request)
    found = await current_session(request)
    if found is not None:
        await app.accounts.sign_out(found)
    response = Response(status_code=204)
    clear_session_cookie(response, request)
    return response


async def get_account(request: Request) -> Response:
    return json_answer(account_body((await signed_in(request)).account), headers=PRIVATE)


async def change_account(request: Request) -> Response:
    app = services(request)
    account = (await signed_in(request)).account
    changes = parse_body(AccountChanges, await json_body(request))
    if changes.notify_pending is not None:
        await app.accounts.repository.set_notify_pending(account.id, changes.notify_pending)
        account = replace(account, notify_pending=changes.notify_pending)
    return json_answer(account_body(account), headers=PRIVATE)


async def list_rooms(request: Request) -> Response:
    app = services(request)
    account = (await signed_in(request)).account
    hosted = await app.rooms.hosted_by(account.id)
    return json_answer(
        HostedRoomList(rooms=[hosted_room_body(entry) for entry in hosted]), headers=PRIVATE
    )


async def list_sessions(request: Request) -> Response:
    app = services(request)
    current = await signed_in(request)
    sessions = await app.accounts.sessions(current.account)
    return json_answer(
        SessionList(
            sessions=[
                SessionBody(
                    id=session.id,
                    device=session.device,
                    created_at=session.created_at.isoformat(),
                    last_used_at=session.last_used_at.isoformat(),
                    current=session.id == current.session.id,
                )
                for session in sessions
            ]
        ),
        headers=PRIVATE,
    )


def _session_id(request: Request) -> int:
    text = request.path_params["session_id"]
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise ApiError(404, "session_not_found", "This account has no such session.")
    return int(text)


async def end_session(request: Request) -> Response:
    app = services(request)
    current = await signed_in(request)
    session_id = _session_id(request)
    await app.accounts.end_session(current.account, session_id)
    response = Response(status_code=204)
    if session_id == current.session.id:
        clear_session_cookie(response, request)
    return response


async def sign_out_everywhere(request: Request) -> Response:
    app = services(request)
    current = await signed_in(request)
    await app.accounts.sign_out_everywhere(current.account)
    response = Response(status_code=204)
    clear_session_cookie(response, request)
    return response


async def claim_room(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    # The host key proves the room is the caller's to claim; the session names the account.
    app.rooms.require_host(room, request.headers.get("authorization"))
    account = (await signed_in(request)).account
    room = await app.rooms.claim(room, account.id)
    (hosted,) = await app.rooms.hosted_by(account.id, room)
    return json_answer(hosted_room_body(hosted), headers=PRIVATE)


_SESSION_ONLY = {401: ("not_signed_in",)}
_TOKEN_ERRORS = {404: ("token_not_found",), 409: ("token_used",), 410: ("token_expired",)}
_COOKIE = {"Set-Cookie": f"`{SESSION_COOKIE}=...; HttpOnly; SameSite=Lax; Path=/`"}

operations = [
    Operation(
        "POST",
        "/api/accounts",
        sign_up,
        "signUp",
        "Create a host account",
        "accounts",
        {
            201: Answer(
                "The account (the same answer when the address already has one: then nothing "
                "is created). Not signed in yet: sign in with `POST /api/session`.",
                AccountBody,
            )
        },
        {
            403: ("signup_closed",),
            422: ("invalid_email", "invalid_password", "invalid_name", "unknown_field"),
            429: ("rate_limited",),
        },
        body=SignUp,
    ),
    Operation(
        "POST",
        "/api/accounts/verify",
        verify_email,
        "verifyEmail",
        "Verify the account's address with the token of its mailed link",
        "accounts",
        {200: Answer("The account, `email_verified` true.", AccountBody)},
        _TOKEN_ERRORS,
        body=VerifyEmail,
    ),
    Operation(
        "POST",
        "/api/me/verification",
        resend_verification,
        "resendVerification",
        "Mail the signed-in account a new verification link",
        "accounts",
        {202: Answer("The mail is queued.")},
        {
            **_SESSION_ONLY,
            409: ("already_verified",),
            429: ("rate_limited",),
            503: ("mail_unavailable",),
        },
        security=("sessionCookie",),
    ),
    Operation(
        "POST",
        "/api/password-reset",
        request_password_reset,
        "requestPasswordReset",
        "Mail a password reset link",
        "accounts",
        {
            202: Answer(
                "The same answer whether or not the address has an account; only an account's "
                "address is mailed a link.",
                PasswordResetAccepted,
            )
        },
        {422: ("unknown_field",), 429: ("rate_limited",), 503: ("mail_unavailable",)},
        body=PasswordResetRequest,
    ),
    Operation(
        "POST",
        "/api/password-reset/confirm",
        confirm_password_reset,
        "confirmPasswordReset",
        "Choose a new password with the token of a reset link",
        "accounts",
        {
            200: Answer(
                "The account: its new password is set, its address verified, and every "
                "session of it ended (sign in again).",
                AccountBody,
            )
        },
        {**_TOKEN_ERRORS, 422: ("invalid_password", "unknown_field")},
        body=PasswordResetConfirm,
    ),
    Operation(
        "POST",
        "/api/session",
        sign_in,
        "signIn",
        "Sign in: open a session",
        "accounts",
        {
            200: Answer(
                "The account; the session is set as an HTTP-only cookie.", AccountBody, _COOKIE
            )
        },
        {
            401: ("invalid_credentials",),
            403: ("account_disabled",),
            422: ("invalid_email", "invalid_password", "unknown_field"),
            429: ("rate_limited",),
        },
        body=SignIn,
    ),
    Operation(
        "DELETE",
        "/api/session",
        sign_out,
        "signOut",
        "Sign out: end this session",
        "accounts",
        {204: Answer("The session is ended on every replica and its cookie cleared.")},
        security=("sessionCookie", "anonymous"),
    ),
    Operation(
        "GET",
        "/api/me",
        get_account,
        "getAccount",
        "The signed-in account",
        "accounts",
        {200: Answer("The account.", AccountBody)},
        _SESSION_ONLY,
        security=("sessionCookie",),
    ),
    Operation(
        "PATCH",
        "/api/me",
        change_account,
        "changeAccount",
        "Change the signed-in account's preferences",
        "accounts",
        {200: Answer("The account as changed.", AccountBody)},
        {**_SESSION_ONLY, 422: ("unknown_field",)},
        body=AccountChanges,
        security=("sessionCookie",),
    ),
    Operation(
        "GET",
        "/api/me/rooms",
        list_rooms,
        "listHostedRooms",
        "The rooms the account owns or co-hosts",
        "accounts",
        {200: Answer("Its rooms, newest first, with its role and their counts.", HostedRoomList)},
        _SESSION_ONLY,
        security=("sessionCookie",),
    ),
    Operation(
        "GET",
        "/api/me/sessions",
        list_sessions,
        "listSessions",
        "The account's signed-in browsers",
        "accounts",
        {200: Answer("Its live sessions, most recently used first.", SessionList)},
        _SESSION_ONLY,
        security=("sessionCookie",),
    ),
    Operation(
        "DELETE",
        "/api/me/sessions",
        sign_out_everywhere,
        "signOutEverywhere",
        "Sign out everywhere: end every session",
        "accounts",
        {204: Answer("Every session of the account is ended, this one too.")},
        _SESSION_ONLY,
        security=("sessionCookie",),
    ),
    Operation(
        "DELETE",
        "/api/me/sessions/{session_id}",
        end_session,
        "endSession",
        "End one of the account's sessions",
        "accounts",
        {204: Answer("That session is ended (this one's cookie is cleared too if it was it).")},
        {**_SESSION_ONLY, 404: ("session_not_found",)},
        security=("sessionCookie",),
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/claim",
        claim_room,
        "claimRoom",
        "Make a room the signed-in account's",
        "accounts",
        {
            200: Answer(
                "The room as the account's room list shows it, role `owner`.", HostedRoomBody
            )
        },
        {
            401: ("host_key_required", "not_signed_in"),
            403: ("wrong_host_key",),
            404: ("room_not_found",),
            409: ("already_claimed",),
        },
        security=("hostKey",),
        description="Needs both the room's host key (`Authorization: Bearer`) and a session "
        "cookie.",
    ),
]
routes = [operation.route() for operation in operations]


async def organisation_sign_in(
    request: Request, identity: VerifiedIdentity, return_to: str
) -> Response:
    """The organisation sign-on's end (``GET /api/oidc/callback``, web/accounts/oidc_endpoints.py):
    sign in to the account of the verified address (created on first sign-on), set the
    session cookie, and go back to ``return_to`` (a same-origin path) with ``303``.

    :raises ApiError: as :meth:`~web.accounts.service.AccountService.sign_in_verified`.
    """
    app = services(request)
    _, token = await app.accounts.sign_in_verified(
        identity.email, identity.name, request.headers.get("user-agent")
    )
    replaced = await current_session(request)
    if replaced is not None:
        await app.accounts.sign_out(replaced)
    response = RedirectResponse(return_to, status_code=303)
    set_session_cookie(response, request, token)
    return response
