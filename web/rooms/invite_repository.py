"""SQL of co-hosts: every query on ``cohost_invites``, and the room's host list and removal
on ``room_hosts``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import delete, insert, select, update

from web.database import Database
from web.rooms.repository import HostRole
from web.schema import accounts, cohost_invites, room_hosts, rooms


@dataclass(frozen=True, slots=True)
class Invite:
    """A row of ``cohost_invites``: an invite link to co-host ``room_id`` (its token is known
    only by its SHA-256)."""

    id: int
    room_id: int
    email: str | None
    created_by: int | None
    created_at: datetime
    expires_at: datetime
    accepted_by: int | None
    accepted_at: datetime | None


@dataclass(frozen=True, slots=True)
class Host:
    """One of a room's hosts: the account, its role, name and e-mail address, and since when."""

    account_id: int
    role: HostRole
    name: str | None
    email: str
    since: datetime


Acceptance = Literal["accepted", "not_found", "used", "expired", "already_host"]
"""What accepting an invite came to (:meth:`InviteRepository.accept`)."""

_INVITE_COLUMNS = (
    cohost_invites.c.id,
    cohost_invites.c.room_id,
    cohost_invites.c.email,
    cohost_invites.c.created_by,
    cohost_invites.c.created_at,
    cohost_invites.c.expires_at,
    cohost_invites.c.accepted_by,
    cohost_invites.c.accepted_at,
)


class InviteRepository:
    """Reads and writes co-host invites and the co-hosts of rooms.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        *,
        room_id: int,
        token_hash: str,
        email: str | None,
        created_by: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> Invite:
        """Insert an invite to ``room_id`` whose token hashes (SHA-256, hex) to
        ``token_hash``; return it."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                insert(cohost_invites)
                .values(
                    room_id=room_id,
                    token_hash=token_hash,
                    email=email,
                    created_by=created_by,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(*_INVITE_COLUMNS)
            )
            return Invite(**result.one()._mapping)

    async def pending(self, room_id: int, now: datetime) -> list[Invite]:
        """The room's invites neither accepted nor expired at ``now``, oldest first."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(*_INVITE_COLUMNS)
                .where(
                    cohost_invites.c.room_id == room_id,
                    cohost_invites.c.accepted_by.is_(None),
                    cohost_invites.c.accepted_at.is_(None),
                    cohost_invites.c.expires_at > now,
                )
                .order_by(cohost_invites.c.id)
            )
            return [Invite(**row._mapping) for row in rows]

    async def revoke(self, room_id: int, invite_id: int) -> bool:
        """Delete the room's invite ``invite_id`` not yet accepted; False when the room has
        no such invite (unknown, another room's, or already used)."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(cohost_invites).where(
                    cohost_invites.c.id == invite_id,
                    cohost_invites.c.room_id == room_id,
                    cohost_invites.c.accepted_at.is_(None),
                )
            )
            return bool(result.rowcount)

    async def find(self, token_hash: str) -> tuple[Invite, str] | None:
        """The invite whose token hashes to ``token_hash`` with its room's token, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(*_INVITE_COLUMNS, rooms.c.token)
                    .join(rooms, rooms.c.id == cohost_invites.c.room_id)
                    .where(cohost_invites.c.token_hash == token_hash)
                )
            ).one_or_none()
            if row is None:
                return None
            values = dict(row._mapping)
            room_token = values.pop("token")
            return Invite(**values), room_token

    async def accept(self, invite: Invite, account_id: int, now: datetime) -> Acceptance:
        """Use ``invite`` for ``account_id``, once: in one transaction mark it accepted (a
        conditional UPDATE, so of two concurrent accepts one wins and the other is ``used``)
        and make the account a co-host of its room. The caller checked the expiry and that
        the account does not own the room.

        :returns: ``accepted``; ``used`` when it was accepted meanwhile (or revoked:
            ``not_found``); ``already_host`` when the account hosts the room already
            (nothing changed, the invite stays unused).
        """
        async with self.database.transaction() as connection:
            role = await connection.scalar(
                select(room_hosts.c.role).where(
                    room_hosts.c.room_id == invite.room_id, room_hosts.c.account_id == account_id
                )
            )
            if role is not None:
                return "already_host"
            marked = await connection.execute(
                update(cohost_invites)
                .where(cohost_invites.c.id == invite.id, cohost_invites.c.accepted_at.is_(None))
                .values(accepted_by=account_id, accepted_at=now)
            )
            if not marked.rowcount:
                still_there = await connection.scalar(
                    select(cohost_invites.c.id).where(cohost_invites.c.id == invite.id)
                )
                return "used" if still_there is not None else "not_found"
            await connection.execute(
                insert(room_hosts).values(
                    room_id=invite.room_id, account_id=account_id, role="cohost", created_at=now
                )
            )
            return "accepted"

    async def hosts(self, room_id: int) -> list[Host]:
        """The room's hosts, the owner first, then co-hosts in the order they joined."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(
                    room_hosts.c.account_id,
                    room_hosts.c.role,
                    accounts.c.name,
                    accounts.c.email,
                    room_hosts.c.created_at.label("since"),
                )
                .join(accounts, accounts.c.id == room_hosts.c.account_id)
                .where(room_hosts.c.room_id == room_id)
                .order_by((room_hosts.c.role == "owner").desc(), room_hosts.c.created_at)
            )
            return [Host(**{**row._mapping, "role": cast(HostRole, row.role)}) for row in rows]

    async def remove_cohost(self, room_id: int, account_id: int) -> bool:
        """Remove ``account_id`` as a co-host of ``room_id`` (never the owner); False when it
        is no co-host there."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(room_hosts).where(
                    room_hosts.c.room_id == room_id,
                    room_hosts.c.account_id == account_id,
                    room_hosts.c.role == "cohost",
                    # a room's owner is rooms.owner_account_id; never remove them here
                    room_hosts.c.account_id.not_in(
                        select(rooms.c.owner_account_id).where(
                            rooms.c.id == room_id, rooms.c.owner_account_id.is_not(None)
                        )
                    ),
                )
            )
            return bool(result.rowcount)
