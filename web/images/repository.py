"""SQL for images and the per-room event log. All image and event queries live here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from realtime.bus import RoomEvent
from web.database import Database
from web.rooms.repository import next_seq
from web.schema import images, participants, room_events


@dataclass(frozen=True, slots=True)
class Image:
    """An image row, with its uploader's display name joined in."""

    id: int
    room_id: int
    participant_id: int | None
    uploader_name: str | None
    seq: int
    caption: str | None
    storage_key: str
    sha256: str
    mime_type: str
    original_bytes: int
    original_width: int
    original_height: int
    width: int
    height: int
    thumb_width: int
    thumb_height: int
    created_at: datetime


class DuplicateImage(Exception):
    """The room already holds an image with these bytes (unique ``room_id, sha256``)."""


_IMAGE_COLUMNS = (*images.c, participants.c.name.label("uploader_name"))


def _image_query() -> Any:
    return select(*_IMAGE_COLUMNS).select_from(
        images.outerjoin(participants, images.c.participant_id == participants.c.id)
    )


class ImageRepository:
    """Reads and writes images, always together with their room events.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, room_id: int, image_id: int) -> Image | None:
        """The image ``image_id`` of ``room_id``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    _image_query().where(images.c.room_id == room_id, images.c.id == image_id)
                )
            ).first()
        return Image(**row._mapping) if row else None

    async def by_sha256(self, room_id: int, sha256: str) -> Image | None:
        """The image of ``room_id`` with these bytes, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    _image_query().where(images.c.room_id == room_id, images.c.sha256 == sha256)
                )
            ).first()
        return Image(**row._mapping) if row else None

    async def page(self, room_id: int, after: int, limit: int) -> list[Image]:
        """Up to ``limit`` images of ``room_id`` with id > ``after``, ascending by id."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                _image_query()
                .where(images.c.room_id == room_id, images.c.id > after)
                .order_by(images.c.id)
                .limit(limit)
            )
            return [Image(**row._mapping) for row in rows]

    async def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that are the storage key of some image."""
        wanted = list(keys)
        found: set[str] = set()
        async with self.database.read() as connection:
            for start in range(0, len(wanted), 500):
                rows = await connection.execute(
                    select(images.c.storage_key).where(
                        images.c.storage_key.in_(wanted[start : start + 500])
                    )
                )
                found.update(row[0] for row in rows)
        return found

    async def add(
        self,
        values: dict[str, Any],
        *,
        uploader_name: str | None,
        render_payload: Any,
        now: datetime,
    ) -> tuple[Image, RoomEvent]:
        """Insert an image and its ``image_added`` event in one transaction.

        :param values: image columns except ``id``, ``seq`` and ``created_at``.
        :param render_payload: ``(Image) -> dict``, builds the event payload (the API's image
            object) once the id and seq are known.
        :raises DuplicateImage: the room already has an image with the same ``sha256``.
        :raises LookupError: the room was deleted meanwhile.
        """
        try:
            async with self.database.transaction() as connection:
                seq = await next_seq(connection, values["room_id"])
                row = (
                    await connection.execute(
                        insert(images)
                        .values(**values, seq=seq, created_at=now)
                        .returning(*images.c)
                    )
                ).one()
                image = Image(**row._mapping, uploader_name=uploader_name)
                event = RoomEvent(image.room_id, seq, "image_added", render_payload(image))
                await connection.execute(
                    insert(room_events).values(
                        room_id=event.room_id,
                        seq=seq,
                        kind=event.kind,
                        payload=event.payload,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            if "sha256" in str(exc.orig) or "uq_images_room_id_sha256" in str(exc.orig):
                raise DuplicateImage from exc
            raise
        return image, event

    async def remove(self, image: Image, *, now: datetime) -> RoomEvent | None:
        """Delete an image and log its ``image_removed`` event in one transaction.

        :returns: the event, or None when the image was already gone.
        """
        async with self.database.transaction() as connection:
            seq = await next_seq(connection, image.room_id)
            deleted = await connection.execute(
                delete(images).where(images.c.id == image.id).returning(images.c.id)
            )
            if deleted.first() is None:
                # Roll back the seq bump: nothing happened.
                await connection.rollback()
                return None
            event = RoomEvent(image.room_id, seq, "image_removed", {"id": image.id, "seq": seq})
            await connection.execute(
                insert(room_events).values(
                    room_id=event.room_id,
                    seq=seq,
                    kind=event.kind,
                    payload=event.payload,
                    created_at=now,
                )
            )
        return event

    async def events_after(self, room_id: int, after_seq: int, limit: int) -> list[RoomEvent]:
        """Up to ``limit`` events of ``room_id`` with seq > ``after_seq``, in seq order."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(
                    room_events.c.room_id,
                    room_events.c.seq,
                    room_events.c.kind,
                    room_events.c.payload,
                )
                .where(room_events.c.room_id == room_id, room_events.c.seq > after_seq)
                .order_by(room_events.c.seq)
                .limit(limit)
            )
            return [RoomEvent(**row._mapping) for row in rows]
