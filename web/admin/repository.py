"""SQL of instance administration: every room with its size and owner, every account, the
rows of a deleted room, and sign-up invites. All queries on ``signup_invites`` live here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update

from web.accounts.repository import Account
from web.database import Database
from web.schema import accounts, images, participants, room_events, rooms, signup_invites, uploads


@dataclass(frozen=True, slots=True)
class AdminRoom:
    """A room as the admin list shows it. Times are UTC; ``stored_bytes`` is the room's byte
    total as its byte quota counts it (originals of every status,
    docs/decisions/0018-room-byte-quota.md)."""

    id: int
    token: str
    title: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    owner_email: str | None
    image_count: int
    stored_bytes: int
    participant_count: int
    last_activity_at: datetime


@dataclass(frozen=True, slots=True)
class AdminAccount:
    """An account as the admin list shows it, with how many rooms it owns."""

    account: Account
    owned_rooms: int


@dataclass(frozen=True, slots=True)
class RoomFiles:
    """What a deleted room left in the media store: its images' storage keys and its direct
    uploads' ids."""

    storage_keys: list[str]
    upload_ids: list[str]


InviteUse = str
"""The outcome of using an invite: ``"used"`` (now spent), ``"spent"`` (used before),
``"unknown"`` (no such invite, or expired)."""


class AdminRepository:
    """Reads every room and account; deletes rooms; stores sign-up invites.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def rooms_page(self, after: int | None, limit: int) -> list[AdminRoom]:
        """Up to ``limit`` rooms (expired ones too), newest first, with ids below ``after``
        when given. Counts are correlated subqueries on indexes (participants by room, the
        newest event by the events' primary key)."""
        participant_count = (
            select(func.count())
            .select_from(participants)
            .where(participants.c.room_id == rooms.c.id)
            .scalar_subquery()
        )
        last_event_at = (
            select(room_events.c.created_at)
            .where(room_events.c.room_id == rooms.c.id)
            .order_by(room_events.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            select(
                rooms.c.id,
                rooms.c.token,
                rooms.c.title,
                rooms.c.created_at,
                rooms.c.expires_at,
                rooms.c.closed_at,
                accounts.c.email.label("owner_email"),
                rooms.c.stored_images,
                rooms.c.stored_bytes,
                participant_count.label("participant_count"),
                last_event_at.label("last_event_at"),
            )
            .select_from(rooms.outerjoin(accounts, accounts.c.id == rooms.c.owner_account_id))
            .order_by(rooms.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(rooms.c.id < after)
        async with self.database.read() as connection:
            rows = await connection.execute(statement)
            return [
                AdminRoom(
                    id=row.id,
                    token=row.token,
                    title=row.title,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                    closed_at=row.closed_at,
                    owner_email=row.owner_email,
                    image_count=int(row.stored_images),
                    stored_bytes=int(row.stored_bytes),
                    participant_count=int(row.participant_count or 0),
                    last_activity_at=row.last_event_at or row.created_at,
                )
                for row in rows
            ]

    async def accounts_page(self, after: int | None, limit: int) -> list[AdminAccount]:
        """Up to ``limit`` accounts, oldest first, with ids above ``after`` when given."""
        owned = (
            select(func.count())
            .select_from(rooms)
            .where(rooms.c.owner_account_id == accounts.c.id)
            .scalar_subquery()
        )
        statement = (
            select(*accounts.c, owned.label("owned_rooms")).order_by(accounts.c.id).limit(limit)
        )
        if after is not None:
            statement = statement.where(accounts.c.id > after)
        async with self.database.read() as connection:
            rows = await connection.execute(statement)
            found = []
            for row in rows:
                values = dict(row._mapping)
                owned_rooms = int(values.pop("owned_rooms") or 0)
                found.append(AdminAccount(Account(**values), owned_rooms))
            return found

    async def delete_room(self, room_id: int) -> RoomFiles | None:
        """Delete the room's row, and with it (foreign keys ``ON DELETE CASCADE``) its
        participants, images, events, uploads and hosts, in one transaction.

        :returns: the keys of the files its images and direct uploads left, for the media
            store to remove; None when the room was already gone.
        """
        async with self.database.transaction() as connection:
            keys = await connection.execute(
                select(images.c.storage_key).where(images.c.room_id == room_id)
            )
            storage_keys = [str(key) for key in keys.scalars()]
            ids = await connection.execute(select(uploads.c.id).where(uploads.c.room_id == room_id))
            upload_ids = [str(upload_id) for upload_id in ids.scalars()]
            deleted = await connection.execute(delete(rooms).where(rooms.c.id == room_id))
            if not deleted.rowcount:
                return None
        return RoomFiles(storage_keys=storage_keys, upload_ids=upload_ids)

    async def add_invite(
        self, *, token_hash: str, created_by: int, now: datetime, expires_at: datetime
    ) -> None:
        """Store a sign-up invite whose token hashes to ``token_hash``."""
        async with self.database.transaction() as connection:
            await connection.execute(
                insert(signup_invites).values(
                    token_hash=token_hash,
                    created_by_account_id=created_by,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def use_invite(self, token_hash: str, now: datetime) -> InviteUse:
        """Spend the invite whose token hashes to ``token_hash`` at ``now`` (a conditional
        UPDATE: of two sign-ups with one invite, one wins)."""
        async with self.database.transaction() as connection:
            spent = await connection.execute(
                update(signup_invites)
                .where(
                    signup_invites.c.token_hash == token_hash,
                    signup_invites.c.used_at.is_(None),
                    signup_invites.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if spent.rowcount:
                return "used"
            row = (
                await connection.execute(
                    select(signup_invites.c.used_at).where(
                        signup_invites.c.token_hash == token_hash
                    )
                )
            ).first()
        return "spent" if row is not None and row.used_at is not None else "unknown"

    async def set_admin(self, account_id: int) -> None:
        """Make the account an admin."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(is_admin=True)
            )
