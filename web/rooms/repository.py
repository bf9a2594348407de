"""SQL for rooms and participants. All room and participant queries live here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from web.database import Database, Statements
from web.event_log import BUMP_SEQ
from web.schema import images, participants, room_events, room_hosts, rooms

HostRole = Literal["owner", "cohost"]
"""An account's role in a room (``room_hosts.role``): the owner may do everything the host key
may; a co-host moderates and changes the wall's settings (web/rooms/service.py ``ROLE_RIGHTS``)."""


@dataclass(frozen=True, slots=True)
class Room:
    """A room row. Times are UTC; ``last_seq`` is the newest room event's sequence number;
    ``stored_images`` counts its images of every status and ``stored_bytes`` sums their
    original sizes (bytes), as of the read."""

    id: int
    token: str
    host_key_hash: str
    title: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    last_seq: int
    uploads_open: bool = True
    moderation: str = "off"
    passcode: str | None = None
    wall_mode: str = "spotlight"
    wall_qr_size: str = "medium"
    wall_captions: bool = True
    wall_blanked: bool = False
    wall_min_seconds: int = 5
    wall_intermission_minutes: int = 0
    wall_intermission_seconds: int = 20
    max_uploads_per_guest: int | None = None
    max_images: int | None = None
    stored_images: int = 0
    max_bytes: int | None = None
    stored_bytes: int = 0
    require_join: bool = False
    gallery_grace_days: int | None = None
    code: str | None = None
    downscale_uploads: bool = False
    keep_location: bool = False
    wall_show_passcode: bool = False
    owner_account_id: int | None = None

    def is_open(self, now: datetime) -> bool:
        """Whether guests may join and upload at ``now`` (not closed, not expired)."""
        return self.closed_at is None and now < self.expires_at

    @property
    def wall_passcode(self) -> str | None:
        """The passcode the host lets the wall show (``wall_show_passcode``), or None: no
        passcode, or not to be shown. Only for viewers the room admits."""
        return self.passcode if self.wall_show_passcode else None

    def in_grace(self, now: datetime) -> bool:
        """Whether at ``now`` the room has expired but its gallery is still readable
        (``expires_at <= now < expires_at + gallery_grace_days``)."""
        if not self.gallery_grace_days or now < self.expires_at:
            return False
        return now < self.expires_at + timedelta(days=self.gallery_grace_days)


@dataclass(frozen=True, slots=True)
class Participant:
    """A guest who joined a room under a display name."""

    id: int
    room_id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HostedRoom:
    """A room an account hosts, its role there and the counts of its room list."""

    room: Room
    role: HostRole
    photo_count: int
    pending_count: int
    participant_count: int
    last_activity_at: datetime


@dataclass(frozen=True, slots=True)
class LockedRoom:
    """What an upload's transaction needs of its room, read under the room row's write lock
    together with the sequence number it allocated (see :func:`lock_room`)."""

    seq: int
    closed_at: datetime | None
    uploads_open: bool
    moderation: str
    max_images: int | None
    max_uploads_per_guest: int | None
    stored_images: int
    """How many images (approved and pending) the room holds before this upload."""
    max_bytes: int | None = None
    stored_bytes: int = 0
    """The original bytes of those images, in bytes."""
    require_join: bool = False


class RoomRepository:
    """Reads and writes rooms and participants.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        *,
        token: str,
        host_key_hash: str,
        now: datetime,
        values: dict[str, Any],
        owner_account_id: int | None = None,
    ) -> Room:
        """Insert a room and return it; with ``owner_account_id`` its owner's ``room_hosts``
        row too, in the same transaction.

        :param values: the other columns: ``title``, ``expires_at`` and any room settings.
        :param owner_account_id: the signed-in account creating it, or None.
        """
        async with self.database.transaction() as connection:
            result = await connection.execute(
                insert(rooms)
                .values(
                    token=token,
                    host_key_hash=host_key_hash,
                    created_at=now,
                    last_seq=0,
                    owner_account_id=owner_account_id,
                    **values,
                )
                .returning(*rooms.c)
            )
            room = Room(**result.one()._mapping)
            if owner_account_id is not None:
                await connection.execute(
                    insert(room_hosts).values(
                        room_id=room.id, account_id=owner_account_id, role="owner", created_at=now
                    )
                )
            return room

    async def host_role(self, room_id: int, account_id: int) -> HostRole | None:
        """The role of ``account_id`` in ``room_id``, or None when it is not one of its hosts."""
        async with self.database.direct_read() as statements:
            role = await statements.scalar(
                _HOST_ROLE, {"room_id": room_id, "account_id": account_id}
            )
        return cast(HostRole, role) if role in ("owner", "cohost") else None

    async def add_host(self, room_id: int, account_id: int, role: HostRole, now: datetime) -> None:
        """Make ``account_id`` a host of ``room_id`` with ``role`` (a co-host; the owner goes
        in through :meth:`create` or :meth:`claim`).

        :raises sqlalchemy.exc.IntegrityError: it already is one, or either does not exist.
        """
        async with self.database.transaction() as connection:
            await connection.execute(
                insert(room_hosts).values(
                    room_id=room_id, account_id=account_id, role=role, created_at=now
                )
            )

    async def claim(self, room_id: int, account_id: int, now: datetime) -> int | None:
        """Give the room without an owner to ``account_id`` (a co-host becomes its owner).

        :returns: the room's owner afterwards: ``account_id`` when it claimed the room (or
            already owned it), another account's id when that one owns it (nothing changed),
            None when the room does not exist.
        """
        async with self.database.transaction() as connection:
            current = await self.locked(connection, room_id)
            if current.owner_account_id is not None:
                return current.owner_account_id
            await connection.execute(
                update(rooms).where(rooms.c.id == room_id).values(owner_account_id=account_id)
            )
            changed = await connection.execute(
                update(room_hosts)
                .where(room_hosts.c.room_id == room_id, room_hosts.c.account_id == account_id)
                .values(role="owner")
            )
            if not changed.rowcount:
                await connection.execute(
                    insert(room_hosts).values(
                        room_id=room_id, account_id=account_id, role="owner", created_at=now
                    )
                )
            return account_id

    async def hosted_by(self, account_id: int, room_id: int | None = None) -> list[HostedRoom]:
        """The rooms ``account_id`` owns or co-hosts (only ``room_id``, if given), newest
        first, with their counts (each a correlated subquery on an index: images by room and
        status, participants by room, the room's newest event by its primary key)."""
        statement = _HOSTED_BY if room_id is None else _HOSTED_BY.where(rooms.c.id == room_id)
        async with self.database.read() as connection:
            rows = await connection.execute(statement, {"account_id": account_id})
            found = []
            for row in rows:
                values = dict(row._mapping)
                counts = {key: values.pop(key) for key in _HOSTED_COUNTS}
                role = cast(HostRole, values.pop("host_role"))
                last_event = counts.pop("last_event_at")
                found.append(
                    HostedRoom(
                        room=Room(**values),
                        role=role,
                        photo_count=int(counts["photo_count"] or 0),
                        pending_count=int(counts["pending_count"] or 0),
                        participant_count=int(counts["participant_count"] or 0),
                        last_activity_at=last_event or values["created_at"],
                    )
                )
            return found

    @staticmethod
    async def locked(connection: AsyncConnection, room_id: int) -> Room:
        """The room row, write-locked until ``connection``'s transaction ends (a no-op UPDATE
        takes the lock on both PostgreSQL and SQLite, where SELECT ... FOR UPDATE does not
        exist).

        :raises LookupError: the room does not exist.
        """
        row = (
            await connection.execute(
                update(rooms)
                .where(rooms.c.id == room_id)
                .values(last_seq=rooms.c.last_seq)
                .returning(*rooms.c)
            )
        ).first()
        if row is None:
            raise LookupError(f"room {room_id} does not exist")
        return Room(**row._mapping)

    @staticmethod
    async def change(connection: AsyncConnection, room_id: int, values: dict[str, Any]) -> Room:
        """Set the room's columns ``values`` inside ``connection``'s transaction; return the
        room as stored afterwards."""
        row = (
            await connection.execute(
                update(rooms).where(rooms.c.id == room_id).values(**values).returning(*rooms.c)
            )
        ).one()
        return Room(**row._mapping)

    async def by_code(self, code: str) -> Room | None:
        """The room with the short code ``code`` (upper case), or None."""
        async with self.database.direct_read() as statements:
            row = await statements.first(_ROOM_BY_CODE, {"code": code})
        return Room(**row) if row else None

    async def by_token(self, token: str) -> Room | None:
        """The room with ``token``, or None."""
        async with self.database.direct_read() as statements:
            row = await statements.first(_ROOM_BY_TOKEN, {"token": token})
        return Room(**row) if row else None

    async def participant_by_id(self, room_id: int, participant_id: int) -> Participant | None:
        """The participant ``participant_id`` of ``room_id``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(*_PARTICIPANT_COLUMNS).where(
                        participants.c.id == participant_id, participants.c.room_id == room_id
                    )
                )
            ).first()
        return Participant(**row._mapping) if row else None

    async def add_participant(
        self, *, room_id: int, name: str, key_hash: str, now: datetime
    ) -> Participant:
        """Insert a participant of ``room_id`` and return it."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                insert(participants)
                .values(room_id=room_id, name=name, key_hash=key_hash, created_at=now)
                .returning(*_PARTICIPANT_COLUMNS)
            )
            return Participant(**result.one()._mapping)

    async def rekey_participant(
        self, participant: Participant, *, name: str, key_hash: str
    ) -> Participant:
        """Rename a participant and replace its bearer key (the old key stops working)."""
        async with self.database.transaction() as connection:
            row = (
                await connection.execute(
                    update(participants)
                    .where(participants.c.id == participant.id)
                    .values(name=name, key_hash=key_hash)
                    .returning(*_PARTICIPANT_COLUMNS)
                )
            ).one()
        return Participant(**row._mapping)

    async def rename_participant(self, participant: Participant, name: str) -> Participant:
        """Change a participant's display name."""
        async with self.database.transaction() as connection:
            row = (
                await connection.execute(
                    update(participants)
                    .where(participants.c.id == participant.id)
                    .values(name=name)
                    .returning(*_PARTICIPANT_COLUMNS)
                )
            ).one()
        return Participant(**row._mapping)

    async def participant_by_key_hash(self, room_id: int, key_hash: str) -> Participant | None:
        """The participant of ``room_id`` whose key hashes to ``key_hash``, or None."""
        async with self.database.direct_read() as statements:
            row = await statements.first(
                _PARTICIPANT_BY_KEY_HASH, {"key_hash": key_hash, "room_id": room_id}
            )
        return Participant(**row) if row else None


_PARTICIPANT_COLUMNS = (
    participants.c.id,
    participants.c.room_id,
    participants.c.name,
    participants.c.created_at,
)

# The statements of every upload, built once with bound parameters: SQLAlchemy then reuses
# their cache key and compiled form, and the direct path (Database.direct_read) compiles each
# once for asyncpg (docs/decisions/0013-upload-path-sql.md).
_ROOM_BY_TOKEN = select(rooms).where(rooms.c.token == bindparam("token"))
_ROOM_BY_CODE = select(rooms).where(rooms.c.code == bindparam("code"))
_PARTICIPANT_BY_KEY_HASH = select(*_PARTICIPANT_COLUMNS).where(
    participants.c.key_hash == bindparam("key_hash"),
    participants.c.room_id == bindparam("room_id"),
)
_HOST_ROLE = select(room_hosts.c.role).where(
    room_hosts.c.room_id == bindparam("room_id"),
    room_hosts.c.account_id == bindparam("account_id"),
)


def _image_count(status: str) -> Any:
    return (
        select(func.count())
        .select_from(images)
        .where(images.c.room_id == rooms.c.id, images.c.status == status)
        .scalar_subquery()
    )


_HOSTED_COUNTS = ("photo_count", "pending_count", "participant_count", "last_event_at")
_HOSTED_BY = (
    select(
        *rooms.c,
        room_hosts.c.role.label("host_role"),
        _image_count("approved").label("photo_count"),
        _image_count("pending").label("pending_count"),
        select(func.count())
        .select_from(participants)
        .where(participants.c.room_id == rooms.c.id)
        .scalar_subquery()
        .label("participant_count"),
        select(room_events.c.created_at)
        .where(room_events.c.room_id == rooms.c.id)
        .order_by(room_events.c.seq.desc())
        .limit(1)
        .scalar_subquery()
        .label("last_event_at"),
    )
    .select_from(
        room_hosts.join(
            rooms,
            and_(
                rooms.c.id == room_hosts.c.room_id,
                room_hosts.c.account_id == bindparam("account_id"),
            ),
        )
    )
    .order_by(rooms.c.created_at.desc(), rooms.c.id.desc())
)


_LOCK_ROOM = BUMP_SEQ.returning(
    rooms.c.last_seq,
    rooms.c.closed_at,
    rooms.c.uploads_open,
    rooms.c.moderation,
    rooms.c.max_images,
    rooms.c.max_uploads_per_guest,
    rooms.c.stored_images,
    rooms.c.max_bytes,
    rooms.c.stored_bytes,
    rooms.c.require_join,
)


async def lock_room(statements: Statements, room_id: int) -> LockedRoom:
    """Allocate the room's next event sequence number, like :func:`web.event_log.next_seq`,
    and read the settings an upload is judged by under the same row lock, so a concurrent
    settings change is either wholly before or wholly after the upload. Raises LookupError if
    the room does not exist."""
    row = await statements.first(_LOCK_ROOM, {"room_id": room_id})
    if row is None:
        raise LookupError(f"room {room_id} does not exist")
    return LockedRoom(
        seq=int(row["last_seq"]),
        closed_at=row["closed_at"],
        uploads_open=bool(row["uploads_open"]),
        moderation=str(row["moderation"]),
        max_images=row["max_images"],
        max_uploads_per_guest=row["max_uploads_per_guest"],
        stored_images=int(row["stored_images"]),
        max_bytes=row["max_bytes"],
        stored_bytes=int(row["stored_bytes"]),
        require_join=bool(row["require_join"]),
    )
