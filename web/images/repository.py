"""SQL for images. All image queries live here; the image service logs each write's room
event (:mod:`web.event_log`) in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from web.database import Database, Statements
from web.schema import images, participants


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
    status: str = "approved"


class DuplicateImage(Exception):
    """The room already holds an image with these bytes (unique ``room_id, sha256``)."""


APPROVED = "approved"
PENDING = "pending"


_IMAGE_COLUMNS = (*images.c, participants.c.name.label("uploader_name"))


def _image_query() -> Any:
    return select(*_IMAGE_COLUMNS).select_from(
        images.outerjoin(participants, images.c.participant_id == participants.c.id)
    )


# The statements of every upload, built once with bound parameters (see the note in
# web/rooms/repository.py).
_IMAGE_BY_SHA256 = _image_query().where(
    images.c.room_id == bindparam("room_id"), images.c.sha256 == bindparam("sha256")
)
_UPLOADER_IMAGES = (
    select(func.count())
    .select_from(images)
    .where(
        images.c.room_id == bindparam("room_id"),
        images.c.participant_id == bindparam("participant_id"),
    )
)
_PENDING_IMAGES = (
    select(func.count())
    .select_from(images)
    .where(images.c.room_id == bindparam("room_id"), images.c.status == PENDING)
)
_INSERT_IMAGE = insert(images).returning(*images.c)


class ImageRepository:
    """Reads and writes images. The writes run inside a transaction the caller opened (the
    image service, which logs the room event in the same one).

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
        async with self.database.direct_read() as statements:
            row = await statements.first(_IMAGE_BY_SHA256, {"room_id": room_id, "sha256": sha256})
        return Image(**row) if row else None

    async def page(
        self,
        room_id: int,
        after: int,
        limit: int,
        *,
        status: str | None = APPROVED,
        participant_id: int | None = None,
    ) -> list[Image]:
        """Up to ``limit`` images of ``room_id`` with id > ``after``, ascending by id.

        :param status: only images of this status (``"approved"``: what the room shows;
            ``"pending"``: the moderation queue); None for every status.
        :param participant_id: only this participant's uploads, when given.
        """
        query = _image_query().where(images.c.room_id == room_id, images.c.id > after)
        if status is not None:
            query = query.where(images.c.status == status)
        if participant_id is not None:
            query = query.where(images.c.participant_id == participant_id)
        async with self.database.read() as connection:
            rows = await connection.execute(query.order_by(images.c.id).limit(limit))
            return [Image(**row._mapping) for row in rows]

    async def count(self, room_id: int, status: str = APPROVED) -> int:
        """How many images of ``status`` (``approved`` or ``pending``) the room holds."""
        async with self.database.read() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(images)
                .where(images.c.room_id == room_id, images.c.status == status)
            )
        return int(count or 0)

    async def count_uploads(self, room_id: int, participant_id: int) -> int:
        """How many images (approved or pending) the participant has in the room."""
        async with self.database.read() as connection:
            count = await connection.scalar(
                _UPLOADER_IMAGES, {"room_id": room_id, "participant_id": participant_id}
            )
        return int(count or 0)

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

    @staticmethod
    async def uploader_image_count(
        statements: Statements, room_id: int, participant_id: int
    ) -> int:
        """How many images (approved or pending) the participant has in the room, as the
        transaction of ``statements`` sees them."""
        count = await statements.scalar(
            _UPLOADER_IMAGES, {"room_id": room_id, "participant_id": participant_id}
        )
        return int(count or 0)

    @staticmethod
    async def pending_count(statements: Statements, room_id: int) -> int:
        """The length of the room's moderation queue, as the transaction of ``statements``
        sees it."""
        return int(await statements.scalar(_PENDING_IMAGES, {"room_id": room_id}) or 0)

    @staticmethod
    async def insert(
        statements: Statements,
        values: dict[str, Any],
        *,
        seq: int,
        status: str,
        now: datetime,
        uploader_name: str | None,
    ) -> Image:
        """Insert an image inside the transaction of ``statements`` and return it.

        :param values: image columns except ``id``, ``seq``, ``status`` and ``created_at``.
        :param seq: the room event sequence number allocated for it in this transaction.
        :param status: ``"approved"`` or ``"pending"``.
        :param uploader_name: the participant's display name, for the returned image.
        :raises sqlalchemy.exc.IntegrityError: on a violated constraint, raised by the
            transaction (see :func:`is_duplicate_image`).
        """
        row = await statements.first(
            _INSERT_IMAGE, {**values, "seq": seq, "status": status, "created_at": now}
        )
        assert row is not None  # INSERT ... RETURNING gives the row
        return Image(**row, uploader_name=uploader_name)

    @staticmethod
    async def delete_row(connection: AsyncConnection, image_id: int) -> str | None:
        """Delete the image inside ``connection``'s transaction; return the status it had,
        or None when it was already gone."""
        deleted = await connection.execute(
            delete(images).where(images.c.id == image_id).returning(images.c.status)
        )
        status = deleted.scalar()
        return str(status) if status is not None else None

    @staticmethod
    async def approve_pending(connection: AsyncConnection, image_id: int, seq: int) -> Image | None:
        """Approve a pending image at ``seq`` inside ``connection``'s transaction and return
        it as stored; None (nothing changed) when it is not pending or gone."""
        updated = await connection.execute(
            update(images)
            .where(images.c.id == image_id, images.c.status == PENDING)
            .values(status=APPROVED, seq=seq)
            .returning(images.c.id)
        )
        if updated.first() is None:
            return None
        row = (await connection.execute(_image_query().where(images.c.id == image_id))).one()
        return Image(**row._mapping)


def is_duplicate_image(error: IntegrityError) -> bool:
    """Whether ``error``, raised by a transaction that inserted an image, is the room's
    unique ``(room_id, sha256)``: the room already holds these bytes."""
    return "sha256" in str(error.orig) or "uq_images_room_id_sha256" in str(error.orig)
