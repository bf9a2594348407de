"""SQL for rooms and participants. All room and participant queries live here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from web.database import Database
from web.schema import images, participants, rooms


@dataclass(frozen=True, slots=True)
class Room:
    """A room row. Times are UTC; ``last_seq`` is the newest room event's sequence number."""

    id: int
    token: str
    host_key_hash: str
    title: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    last_seq: int

    def is_open(self, now: datetime) -> bool:
        """Whether guests may join and upload at ``now`` (not closed, not expired)."""
        return self.closed_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Participant:
    """A guest who joined a room under a display name."""

    id: int
    room_id: int
    name: str
    created_at: datetime


class RoomRepository:
    """Reads and writes rooms and participants.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self, *, token: str, host_key_hash: str, title: str, now: datetime, expires_at: datetime
    ) -> Room:
        """Insert a room and return it."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                insert(rooms)
                .values(
                    token=token,
                    host_key_hash=host_key_hash,
                    title=title,
                    created_at=now,
                    expires_at=expires_at,
                    last_seq=0,
                )
                .returning(*rooms.c)
            )
            return Room(**result.one()._mapping)

    async def by_token(self, token: str) -> Room | None:
        """The room with ``token``, or None."""
        async with self.database.read() as connection:
            row = (await connection.execute(select(rooms).where(rooms.c.token == token))).first()
        return Room(**row._mapping) if row else None

    async def image_count(self, room_id: int) -> int:
        """How many images the room holds."""
        async with self.database.read() as connection:
            count = await connection.scalar(
                select(func.count()).select_from(images).where(images.c.room_id == room_id)
            )
        return int(count or 0)

    async def add_participant(
        self, *, room_id: int, name: str, key_hash: str, now: datetime
    ) -> Participant:
        """Insert a participant of ``room_id`` and return it."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                insert(participants)
                .values(room_id=room_id, name=name, key_hash=key_hash, created_at=now)
                .returning(
                    participants.c.id,
                    participants.c.room_id,
                    participants.c.name,
                    participants.c.created_at,
                )
            )
            return Participant(**result.one()._mapping)

    async def participant_by_key_hash(self, room_id: int, key_hash: str) -> Participant | None:
        """The participant of ``room_id`` whose key hashes to ``key_hash``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(
                        participants.c.id,
                        participants.c.room_id,
                        participants.c.name,
                        participants.c.created_at,
                    ).where(participants.c.key_hash == key_hash, participants.c.room_id == room_id)
                )
            ).first()
        return Participant(**row._mapping) if row else None


async def next_seq(connection: AsyncConnection, room_id: int) -> int:
    """Allocate the room's next event sequence number inside ``connection``'s transaction.

    The UPDATE takes the room row's write lock until commit, so transactions that change one
    room commit one at a time and in ``seq`` order; ids drawn after this call therefore sort in
    commit order within the room. Raises LookupError if the room does not exist.
    """
    seq = await connection.scalar(
        update(rooms)
        .where(rooms.c.id == room_id)
        .values(last_seq=rooms.c.last_seq + 1)
        .returning(rooms.c.last_seq)
    )
    if seq is None:
        raise LookupError(f"room {room_id} does not exist")
    return int(seq)
