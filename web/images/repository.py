"""SQL for images. All image queries live here; their room events are logged through
:mod:`web.event_log` in the same transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from web.database import Database, SQLAlchemyStatements, Statements
from web.event_log import RoomEvent, log_event, next_seq
from web.rooms.repository import LockedRoom, lock_room
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

Admission = Callable[[LockedRoom, Callable[[], Awaitable[int]]], Awaitable[str]]
"""Decides, inside an upload's transaction, whether the room takes the image and with which
status: called with the room as locked (which includes its image count) and a function
counting the uploader's images; returns ``"approved"`` or ``"pending"`` or raises to refuse
(rolling back)."""


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
        render_payload: Callable[[Image], dict[str, Any]],
        admit: Admission,
        now: datetime,
    ) -> tuple[Image, RoomEvent]:
        """Insert an image and its event in one transaction, under the room row's lock.

        The event is ``image_added`` for an approved image, ``moderation_queue`` (with the new
        queue length) for a pending one.

        :param values: image columns except ``id``, ``seq``, ``status`` and ``created_at``.
        :param render_payload: ``(Image) -> dict``, builds the event payload (the API's image
            object) once the id and seq are known.
        :param admit: decides the status or refuses, see :data:`Admission`.
        :raises DuplicateImage: the room already has an image with the same ``sha256``.
        :raises LookupError: the room was deleted meanwhile.
        """
        room_id = values["room_id"]
        participant_id = values.get("participant_id")
        try:
            async with self.database.direct_transaction() as statements:
                locked = await lock_room(statements, room_id)

                async def uploader_images() -> int:
                    if participant_id is None:
                        return 0
                    count = await statements.scalar(
                        _UPLOADER_IMAGES, {"room_id": room_id, "participant_id": participant_id}
                    )
                    return int(count or 0)

                status = await admit(locked, uploader_images)
                seq = locked.seq
                row = await statements.first(
                    _INSERT_IMAGE, {**values, "seq": seq, "status": status, "created_at": now}
                )
                assert row is not None  # INSERT ... RETURNING gives the row
                image = Image(**row, uploader_name=uploader_name)
                if status == APPROVED:
                    event = RoomEvent(room_id, seq, "image_added", render_payload(image))
                else:
                    event = await _queue_event(statements, room_id, seq)
                await log_event(statements, event, now)
        except IntegrityError as exc:
            if "sha256" in str(exc.orig) or "uq_images_room_id_sha256" in str(exc.orig):
                raise DuplicateImage from exc
            raise
        return image, event

    async def remove(self, image: Image, *, now: datetime) -> RoomEvent | None:
        """Delete an image and log its event in one transaction: ``image_removed`` for an
        approved image, ``moderation_queue`` for a pending one (guests never saw it).

        :returns: the event, or None when the image was already gone.
        """
        async with self.database.transaction() as connection:
            seq = await next_seq(connection, image.room_id)
            deleted = await connection.execute(
                delete(images).where(images.c.id == image.id).returning(images.c.status)
            )
            status = deleted.scalar()
            if status is None:
                # Roll back the seq bump: nothing happened.
                await connection.rollback()
                return None
            if status == APPROVED:
                event = RoomEvent(image.room_id, seq, "image_removed", {"id": image.id, "seq": seq})
            else:
                event = await _queue_event(SQLAlchemyStatements(connection), image.room_id, seq)
            await log_event(SQLAlchemyStatements(connection), event, now)
        return event

    async def approve(
        self,
        image: Image,
        *,
        render_payload: Callable[[Image], dict[str, Any]],
        now: datetime,
    ) -> tuple[Image, RoomEvent | None]:
        """Approve a pending image: it takes a new ``seq`` and its ``image_added`` is logged,
        in one transaction.

        :returns: the image as stored afterwards, and the event (None when it was approved
            already).
        :raises LookupError: the image is gone.
        """
        async with self.database.transaction() as connection:
            seq = await next_seq(connection, image.room_id)
            updated = await connection.execute(
                update(images)
                .where(images.c.id == image.id, images.c.status == PENDING)
                .values(status=APPROVED, seq=seq)
                .returning(images.c.id)
            )
            if updated.first() is None:
                await connection.rollback()
                current = await self.get(image.room_id, image.id)
                if current is None:
                    raise LookupError(f"image {image.id} is gone")
                return current, None
            row = (await connection.execute(_image_query().where(images.c.id == image.id))).one()
            approved = Image(**row._mapping)
            event = RoomEvent(image.room_id, seq, "image_added", render_payload(approved))
            await log_event(SQLAlchemyStatements(connection), event, now)
        return approved, event


async def _queue_event(statements: Statements, room_id: int, seq: int) -> RoomEvent:
    """The ``moderation_queue`` event at ``seq``, with the queue length as the transaction
    sees it."""
    pending = int(await statements.scalar(_PENDING_IMAGES, {"room_id": room_id}) or 0)
    return RoomEvent(room_id, seq, "moderation_queue", {"seq": seq, "pending_count": pending})
