"""The per-room event log as the live side reads it (replays, snapshots, catch-up)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from realtime.bus import RoomEvent
from web.database import Database
from web.images.repository import ImageRepository
from web.images.views import image_view
from web.schema import rooms


class DatabaseRoomLog:
    """:class:`realtime.delivery.RoomLog` over the database.

    :param database: the replica's connection pool.
    :param images: image and event queries.
    """

    SNAPSHOT_PAGE = 1000

    def __init__(self, database: Database, images: ImageRepository) -> None:
        self.database = database
        self.images = images

    async def events_after(self, room_id: int, after_seq: int, limit: int) -> list[RoomEvent]:
        """Up to ``limit`` events of the room with ``seq > after_seq``, ascending."""
        return await self.images.events_after(room_id, after_seq, limit)

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
            images += [image_view(image) for image in page]
            if len(page) < self.SNAPSHOT_PAGE:
                return seq, images
            after = page[-1].id
