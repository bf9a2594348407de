"""The per-room event log, shared by the HTTP side and the live side.

Every change to a room (an image added, removed or queued, its settings changed, the room
closed) is logged as a :class:`RoomEvent` in the transaction that makes it, with the room's
next sequence number (``rooms.last_seq``, bumped under the room row's write lock). This module
holds the event type and all of the log's SQL: allocating a ``seq`` (:func:`next_seq`, and
:data:`BUMP_SEQ` for statements that allocate one while reading the room), appending
(:func:`log_event`), reading (:func:`events_after`) and what the live side replays and
snapshots from (:class:`DatabaseRoomLog`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from web.database import Database, Statements
from web.schema import room_events, rooms

if TYPE_CHECKING:
    from web.images.repository import Image, ImageRepository


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One room event: ``kind`` is the Socket.IO event name, ``payload`` its argument (which
    carries the same ``seq``); ``seq`` numbers the room's events from 1 with no gaps."""

    room_id: int
    seq: int
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> str:
        """Encode for the wire (compact JSON). The fields are listed rather than taken with
        ``dataclasses.asdict``, which deep-copies the payload first."""
        fields = {"room_id": self.room_id, "seq": self.seq, "kind": self.kind}
        return json.dumps({**fields, "payload": self.payload}, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> RoomEvent:
        """Decode what :meth:`to_json` made; raises ValueError/KeyError/TypeError if malformed."""
        fields = json.loads(data)
        return cls(
            room_id=int(fields["room_id"]),
            seq=int(fields["seq"]),
            kind=str(fields["kind"]),
            payload=dict(fields["payload"]),
        )


# Built once with bound parameters (docs/decisions/0013-upload-path-sql.md).
BUMP_SEQ = (
    update(rooms).where(rooms.c.id == bindparam("room_id")).values(last_seq=rooms.c.last_seq + 1)
)
"""The UPDATE allocating room ``room_id``'s next ``seq`` (and taking its row's write lock);
add ``.returning(rooms.c.last_seq, ...)`` to read the new ``seq`` and the room's columns in
the same round trip."""
_NEXT_SEQ = BUMP_SEQ.returning(rooms.c.last_seq)
_INSERT_EVENT = insert(room_events)
# Every (re)connecting client's catch-up, and every gap a replica notices.
_EVENTS_AFTER = (
    select(room_events.c.room_id, room_events.c.seq, room_events.c.kind, room_events.c.payload)
    .where(
        room_events.c.room_id == bindparam("room_id"),
        room_events.c.seq > bindparam("after_seq"),
    )
    .order_by(room_events.c.seq)
    .limit(bindparam("limit"))
)


async def next_seq(connection: AsyncConnection, room_id: int) -> int:
    """Allocate the room's next event sequence number inside ``connection``'s transaction.

    The UPDATE takes the room row's write lock until commit, so transactions that change one
    room commit one at a time and in ``seq`` order; ids drawn after this call therefore sort in
    commit order within the room. Raises LookupError if the room does not exist.
    """
    seq = await connection.scalar(_NEXT_SEQ, {"room_id": room_id})
    if seq is None:
        raise LookupError(f"room {room_id} does not exist")
    return int(seq)


async def log_event(statements: Statements, event: RoomEvent, now: datetime) -> None:
    """Append ``event`` (its ``seq`` allocated in this transaction) to the room event log
    inside the transaction of ``statements``: a :meth:`Database.direct_transaction`, or a
    connection of :meth:`Database.transaction` wrapped in ``SQLAlchemyStatements``.

    :param now: the event's ``created_at``, UTC.
    """
    await statements.execute(
        _INSERT_EVENT,
        {
            "room_id": event.room_id,
            "seq": event.seq,
            "kind": event.kind,
            "payload": event.payload,
            "created_at": now,
        },
    )


async def events_after(
    database: Database, room_id: int, after_seq: int, limit: int
) -> list[RoomEvent]:
    """Up to ``limit`` events of ``room_id`` with seq > ``after_seq``, in seq order.

    :raises sqlalchemy.exc.DBAPIError: the database failed or is unreachable.
    """
    async with database.direct_read() as statements:
        rows = await statements.all(
            _EVENTS_AFTER, {"room_id": room_id, "after_seq": after_seq, "limit": limit}
        )
    return [RoomEvent(**row) for row in rows]


class DatabaseRoomLog:
    """:class:`realtime.delivery.RoomLog` over the database: replays, snapshots, catch-up.

    :param database: the replica's connection pool.
    :param images: the room's images, paged by id, for snapshots.
    :param render_image: ``(Image) -> dict``, the API's image object a snapshot lists.
    """

    SNAPSHOT_PAGE = 1000

    def __init__(
        self,
        database: Database,
        images: ImageRepository,
        render_image: Callable[[Image], dict[str, Any]],
    ) -> None:
        self.database = database
        self.images = images
        self.render_image = render_image

    async def events_after(self, room_id: int, after_seq: int, limit: int) -> list[RoomEvent]:
        """Up to ``limit`` events of the room with ``seq > after_seq``, ascending."""
        return await events_after(self.database, room_id, after_seq, limit)

    async def last_seqs(self, room_ids: list[int]) -> dict[int, int]:
        """``{room_id: last_seq}`` for those of ``room_ids`` that exist."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(rooms.c.id, rooms.c.last_seq).where(rooms.c.id.in_(room_ids))
            )
            return {int(row.id): int(row.last_seq) for row in rows}

    async def snapshot(self, room_id: int) -> tuple[int, list[dict[str, Any]]]:
        """``(seq, images)``: ``seq`` is read first, so every event up to it is reflected in
        the images listed after it (later ones may be too; clients apply events idempotently)."""
        seq = (await self.last_seqs([room_id])).get(room_id, 0)
        images: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.images.page(room_id, after, self.SNAPSHOT_PAGE)
            images += [self.render_image(image) for image in page]
            if len(page) < self.SNAPSHOT_PAGE:
                return seq, images
            after = page[-1].id
