"""Co-host rules: the owner's single-use invite links, accepting one, the host list, and
removing a co-host (or a co-host leaving), which the live side applies on every replica."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from realtime.bus import RoomEventBus
from web.errors import ApiError
from web.rooms.invite_repository import Host, Invite, InviteRepository
from web.rooms.repository import Room
from web.rooms.service import RoomService
from web.security import digest, new_secret_key
from web.settings import Settings


def invite_not_found() -> ApiError:
    """A new 404 ``invite_not_found``."""
    return ApiError(404, "invite_not_found", "This invite link is unknown or was revoked.")


def cohost_not_found() -> ApiError:
    """A new 404 ``cohost_not_found``."""
    return ApiError(404, "cohost_not_found", "That account is no co-host of this room.")


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite and its token (known only here: the database keeps its SHA-256)."""

    invite: Invite
    token: str


class CohostService:
    """Invites and co-hosts of rooms. The caller (``web/rooms/cohost_endpoints.py``) has
    checked the caller's role with ``require_host``.

    :param invites: invite and host-list storage.
    :param rooms: room lookups and roles.
    :param bus: tells every replica's live side of a removed co-host.
    :param settings: ``cohost_invite_days``, how long a link stays valid.

    The current time is the room service's clock (``rooms.clock``), so both read one time.
    """

    def __init__(
        self,
        invites: InviteRepository,
        rooms: RoomService,
        bus: RoomEventBus,
        settings: Settings,
    ) -> None:
        self.invites = invites
        self.rooms = rooms
        self.bus = bus
        self.settings = settings

    async def invite(self, room: Room, email: str | None, created_by: int | None) -> IssuedInvite:
        """Make a single-use invite link to co-host ``room``, valid for
        ``IMAGESHARK_COHOST_INVITE_DAYS``.

        :param email: whom it is meant for (kept for mailing it later), or None.
        :param created_by: the owner's account, or None for the host key alone.
        :returns: the invite with its token (256 random bits, :func:`new_secret_key`).
        """
        token = new_secret_key()
        now = self.rooms.clock()
        invite = await self.invites.create(
            room_id=room.id,
            token_hash=digest(token),
            email=email,
            created_by=created_by,
            now=now,
            expires_at=now + timedelta(days=self.settings.cohost_invite_days),
        )
        return IssuedInvite(invite, token)

    async def pending_invites(self, room: Room) -> list[Invite]:
        """The room's invites neither used nor expired, oldest first."""
        return await self.invites.pending(room.id, self.rooms.clock())

    async def revoke_invite(self, room: Room, invite_id: int) -> None:
        """Delete the room's unused invite ``invite_id``: its link opens nothing afterwards.

        :raises ApiError: 404 ``invite_not_found``: no such unused invite in this room.
        """
        if not await self.invites.revoke(room.id, invite_id):
            raise invite_not_found()

    async def accept(self, token: str, account_id: int) -> Room:
        """Make ``account_id`` a co-host of the room of the invite ``token``, using it up.

        :returns: the room.
        :raises ApiError: 404 ``invite_not_found`` (unknown or revoked); 410 ``invite_expired``
            (past its ``expires_at``, or its room has expired); 409 ``invite_used`` (accepted
            before, by anyone); 409 ``already_host`` (the account owns or co-hosts the room
            already; the invite stays unused).
        """
        found = await self.invites.find(digest(token))
        if found is None:
            raise invite_not_found()
        invite, room_token = found
        if invite.accepted_at is not None:
            raise invite_used()
        room = await self.rooms.find(room_token)
        if invite.expires_at <= self.rooms.clock() or room is None:
            raise ApiError(410, "invite_expired", "This invite link has expired.")
        if room.owner_account_id == account_id:
            raise already_host()
        outcome = await self.invites.accept(invite, account_id, self.rooms.clock())
        if outcome == "used":
            raise invite_used()
        if outcome == "not_found":
            raise invite_not_found()
        if outcome == "already_host":
            raise already_host()
        return room

    async def hosts(self, room: Room) -> list[Host]:
        """The room's hosts: owner first, then co-hosts in the order they joined."""
        return await self.invites.hosts(room.id)

    async def remove(self, room: Room, account_id: int) -> None:
        """Remove the co-host ``account_id`` from ``room``: its session's host actions are
        refused from now on (every request reads the roles), and every replica's live side
        demotes its host sockets in the room (:meth:`RoomEventBus.revoke_host`).

        :raises ApiError: 404 ``cohost_not_found``: it is no co-host of the room (the owner
            is never one).
        """
        if not await self.invites.remove_cohost(room.id, account_id):
            raise cohost_not_found()
        await self.bus.revoke_host(room.id, account_id)


def invite_used() -> ApiError:
    """A new 409 ``invite_used``."""
    return ApiError(409, "invite_used", "This invite link has been used already.")


def already_host() -> ApiError:
    """A new 409 ``already_host``."""
    return ApiError(409, "already_host", "Your account already hosts this room.")
