"""Instance administration: every room (close, delete), every account (disable, enable),
sign-up invites, and making an account an admin (``imageshark create-admin``).

Every action is logged as one structured line ``admin action`` with ``admin_id``, ``action``
and ``target`` (web/logs.py renders ``extra`` fields).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from web.accounts.passwords import Passwords
from web.accounts.repository import Account, AccountRepository
from web.admin.repository import AdminAccount, AdminRepository, AdminRoom
from web.errors import ApiError
from web.media import MediaStore
from web.rooms.repository import Room
from web.rooms.service import RoomService, room_not_found, utc_now
from web.security import digest, is_well_formed_token, new_secret_key

logger = logging.getLogger(__name__)

INVITE_DAYS = 7
"""Days a sign-up invite stays usable (days)."""
MAX_PAGE = 500
"""Most rooms or accounts one list request answers."""
DEFAULT_PAGE = 100


def admin_forbidden() -> ApiError:
    """A new 403 ``forbidden``: the signed-in account is no admin."""
    return ApiError(403, "forbidden", "Only an admin of this service may do this.")


def page_bounds(after: str | None, limit: str | None) -> tuple[int | None, int]:
    """``after`` (an id) and ``limit`` query parameters as numbers.

    :returns: ``(after or None, limit)``, ``limit`` 1 to :data:`MAX_PAGE`, default
        :data:`DEFAULT_PAGE`.
    :raises ApiError: 422 ``invalid_after`` or ``invalid_limit`` for anything else.
    """

    def number(text: str) -> int | None:
        return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None

    cursor = number(after) if after else None
    if after and cursor is None:
        raise ApiError(422, "invalid_after", "`after` must be an id from the previous page.")
    size = number(limit) if limit else DEFAULT_PAGE
    if size is None or not 1 <= size <= MAX_PAGE:
        raise ApiError(422, "invalid_limit", f"`limit` must be 1 to {MAX_PAGE}.")
    return cursor, size


@dataclass(frozen=True, slots=True)
class Invite:
    """A new sign-up invite: its token (only its SHA-256 is stored) and when it expires."""

    token: str
    expires_at: datetime


class AdminService:
    """What an admin may do, and the command line's ``create-admin``.

    :param repository: the admin queries.
    :param accounts: account storage (disabling, sessions).
    :param rooms: the room rules (closing publishes ``room_closed``).
    :param media: the media store, whose delete path removes a deleted room's files.
    :param signup: ``IMAGESHARK_SIGNUP`` (invites are issued only for ``invite``).
    :param clock: returns the current UTC time.
    """

    def __init__(
        self,
        repository: AdminRepository,
        accounts: AccountRepository,
        rooms: RoomService,
        media: MediaStore,
        signup: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.accounts = accounts
        self.rooms = rooms
        self.media = media
        self.signup = signup
        self.clock = clock

    @staticmethod
    def require_admin(account: Account) -> None:
        """:raises ApiError: 403 ``forbidden`` unless ``account`` is an admin."""
        if not account.is_admin:
            raise admin_forbidden()

    async def rooms_page(self, after: int | None, limit: int) -> list[AdminRoom]:
        """Every room (expired ones too), newest first; see
        :meth:`AdminRepository.rooms_page`."""
        return await self.repository.rooms_page(after, limit)

    async def accounts_page(self, after: int | None, limit: int) -> list[AdminAccount]:
        """Every account, oldest first; see :meth:`AdminRepository.accounts_page`."""
        return await self.repository.accounts_page(after, limit)

    async def _room(self, token: str) -> Room:
        room = await self.rooms.repository.by_token(token) if is_well_formed_token(token) else None
        if room is None:
            raise room_not_found()
        return room

    async def close_room(self, admin: Account, token: str) -> Room:
        """Close the room ``token`` as its host would (``room_closed`` to its live clients);
        an expired room may be closed too.

        :raises ApiError: 404 ``room_not_found``.
        """
        room = await self._room(token)
        try:
            closed = await self.rooms.close(room)
        except LookupError:
            raise room_not_found() from None
        _log(admin, "close_room", token)
        return closed

    async def delete_room(self, admin: Account, token: str) -> None:
        """Delete the room ``token``: close it first (its live clients get ``room_closed``
        and their pages show the room closed), then its rows, then its images' files and
        direct uploads' bytes through the media store's delete path.

        :raises ApiError: 404 ``room_not_found``.
        """
        room = await self._room(token)
        with contextlib.suppress(LookupError):
            await self.rooms.close(room)
        files = await self.repository.delete_room(room.id)
        if files is None:
            raise room_not_found()
        for key in files.storage_keys:
            # As when one image is deleted: the row is gone, a file left behind is only space.
            with contextlib.suppress(OSError):
                await self.media.delete(key)
        for upload_id in files.upload_ids:
            with contextlib.suppress(OSError):
                await self.media.delete_upload(upload_id)
        _log(admin, "delete_room", token, images=len(files.storage_keys))

    async def _account(self, account_id: int) -> Account:
        account = await self.accounts.by_id(account_id)
        if account is None:
            raise account_not_found()
        return account

    async def disable_account(self, admin: Account, account_id: int) -> Account:
        """Disable the account and end all its sessions at once (its cookies answer 401).

        :raises ApiError: 404 ``account_not_found``; 409 ``cannot_disable_self``.
        """
        if account_id == admin.id:
            raise ApiError(409, "cannot_disable_self", "An admin cannot disable their own account.")
        account = await self._account(account_id)
        await self.accounts.set_disabled(account_id, True)
        ended = await self.accounts.delete_sessions(account_id)
        _log(admin, "disable_account", account_id, sessions_ended=ended)
        return replace(account, disabled=True)

    async def enable_account(self, admin: Account, account_id: int) -> Account:
        """Let a disabled account sign in again.

        :raises ApiError: 404 ``account_not_found``.
        """
        account = await self._account(account_id)
        await self.accounts.set_disabled(account_id, False)
        _log(admin, "enable_account", account_id)
        return replace(account, disabled=False)

    async def new_invite(self, admin: Account) -> Invite:
        """Issue a single-use sign-up invite, usable for :data:`INVITE_DAYS` days.

        :raises ApiError: 409 ``invites_not_enabled`` unless ``IMAGESHARK_SIGNUP=invite``.
        """
        if self.signup != "invite":
            raise ApiError(
                409,
                "invites_not_enabled",
                "Invites are issued only when IMAGESHARK_SIGNUP is `invite`.",
            )
        token = new_secret_key()
        now = self.clock()
        expires_at = now + timedelta(days=INVITE_DAYS)
        await self.repository.add_invite(
            token_hash=digest(token), created_by=admin.id, now=now, expires_at=expires_at
        )
        _log(admin, "create_invite", None)
        return Invite(token=token, expires_at=expires_at)


def account_not_found() -> ApiError:
    """A new 404 ``account_not_found``."""
    return ApiError(404, "account_not_found", "There is no such account.")


def _log(admin: Account, action: str, target: object, **details: object) -> None:
    logger.info(
        "admin action",
        extra={"admin_id": admin.id, "action": action, "target": target, **details},
    )


async def create_admin(
    accounts: AccountRepository,
    admin_rows: AdminRepository,
    passwords: Passwords,
    email: str,
    password: str,
    now: datetime,
) -> tuple[Account, bool]:
    """Create the account ``email`` as an admin with ``password``, or make the existing
    account of ``email`` an admin (its password is left as it is).

    :param email: a normalised address.
    :returns: the account and whether it was created (False: promoted).
    """
    existing = await accounts.by_email(email)
    if existing is None:
        created = await accounts.create(
            email=email, name=None, password_hash=await passwords.hash(password), now=now
        )
        if created is not None:
            await admin_rows.set_admin(created.id)
            logger.info("admin created", extra={"account_id": created.id})
            return replace(created, is_admin=True), True
        existing = await accounts.by_email(email)  # created meanwhile by a sign-up
        assert existing is not None
    await admin_rows.set_admin(existing.id)
    logger.info("admin promoted", extra={"account_id": existing.id})
    return replace(existing, is_admin=True), False
