"""SQL for direct uploads: every query on ``uploads`` lives here (see :mod:`web.images.direct`).

An upload's status only moves forward: ``issued`` → ``processing`` → ``done`` or ``failed``;
each step is one conditional UPDATE, so two requests (or two replicas) racing on one upload
agree on who made the step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from web.database import Database
from web.schema import rooms, uploads

ISSUED = "issued"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Upload:
    """An ``uploads`` row, with its room's token joined in.

    :ivar size: declared, bytes.
    :ivar error_status: the HTTP status a direct POST would have answered (``failed`` only).
    """

    id: str
    room_id: int
    room_token: str
    participant_id: int | None
    by_host: bool
    content_type: str
    size: int
    caption: str | None
    sha256: str | None
    status: str
    image_id: int | None
    error_status: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None


def _query() -> Any:
    return select(*uploads.c, rooms.c.token.label("room_token")).select_from(
        uploads.join(rooms, uploads.c.room_id == rooms.c.id)
    )


def _upload(row: Any) -> Upload:
    return _upload_of(row._mapping)


def _upload_of(mapping: Mapping[str, Any]) -> Upload:
    values = dict(mapping)
    values["by_host"] = bool(values["by_host"])
    return Upload(**values)


# What a rendition worker runs for every upload, built once for Database.direct_read and
# direct_transaction (docs/decisions/0013-upload-path-sql.md): the upload read, the claim that
# reads it too (one statement instead of a read and an update), and the finish.
_ROOM_TOKEN = (
    select(rooms.c.token)
    .where(rooms.c.id == uploads.c.room_id)
    .correlate(uploads)
    .scalar_subquery()
    .label("room_token")
)
_UPLOAD_BY_ID = _query().where(uploads.c.id == bindparam("upload_id"))
_CLAIM = (
    update(uploads)
    .where(uploads.c.id == bindparam("upload_id"), uploads.c.status == PROCESSING)
    .values(claimed_at=bindparam("claimed"))
    .returning(*uploads.c, _ROOM_TOKEN)
)
_FINISH = (
    update(uploads)
    .where(uploads.c.id == bindparam("upload_id"), uploads.c.status == PROCESSING)
    .values(status=DONE, image_id=bindparam("finished_image"))
    .returning(uploads.c.id)
)


class UploadRepository:
    """Reads and writes ``uploads``; each write is its own short transaction.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def insert(self, values: dict[str, Any]) -> None:
        """Insert an ``issued`` upload.

        :param values: every column but ``status``, ``image_id``, the error's and
            ``claimed_at``.
        """
        async with self.database.transaction() as connection:
            await connection.execute(insert(uploads).values(**values, status=ISSUED))

    async def get(self, upload_id: str, room_id: int | None = None) -> Upload | None:
        """The upload ``upload_id`` (of ``room_id``, when given), or None."""
        if room_id is None:
            async with self.database.direct_read() as statements:
                found = await statements.first(_UPLOAD_BY_ID, {"upload_id": upload_id})
            return _upload_of(found) if found is not None else None
        query = _query().where(uploads.c.id == upload_id, uploads.c.room_id == room_id)
        async with self.database.read() as connection:
            row = (await connection.execute(query)).first()
        return _upload(row) if row is not None else None

    async def start_processing(self, upload_id: str, now: datetime) -> bool:
        """Move an ``issued`` upload whose URL has not expired to ``processing``, claimed at
        ``now``; False when it was not (completed already, expired or gone)."""
        async with self.database.transaction() as connection:
            changed = await connection.execute(
                update(uploads)
                .where(
                    uploads.c.id == upload_id,
                    uploads.c.status == ISSUED,
                    uploads.c.expires_at > now,
                )
                .values(status=PROCESSING, claimed_at=now)
            )
        return bool(changed.rowcount)

    async def unstart(self, upload_id: str) -> bool:
        """Move a ``processing`` upload back to ``issued`` (its job could not be queued, so
        the client completes it again); False when it was not processing."""
        async with self.database.transaction() as connection:
            changed = await connection.execute(
                update(uploads)
                .where(uploads.c.id == upload_id, uploads.c.status == PROCESSING)
                .values(status=ISSUED)
            )
        return bool(changed.rowcount)

    async def claim(self, upload_id: str, now: datetime) -> Upload | None:
        """Record that processing of a ``processing`` upload (re)starts at ``now``, in one
        statement that also reads it.

        :returns: the upload as claimed; None when it is no longer processing (finished by
            another replica) or gone (its room deleted).
        """
        async with self.database.direct_transaction() as statements:
            claimed = await statements.first(_CLAIM, {"upload_id": upload_id, "claimed": now})
        return _upload_of(claimed) if claimed is not None else None

    async def finish(self, upload_id: str, image_id: int) -> bool:
        """Mark a ``processing`` upload ``done`` with its image.

        :returns: whether it was marked; False when it was not processing (another replica
            finished it).
        """
        async with self.database.direct_transaction() as statements:
            marked = await statements.scalar(
                _FINISH, {"upload_id": upload_id, "finished_image": image_id}
            )
        return marked is not None

    async def fail(self, upload_id: str, status: int, code: str, message: str) -> None:
        """Mark a ``processing`` upload ``failed`` with the error a direct POST would have
        answered (nothing if it is not processing)."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(uploads)
                .where(uploads.c.id == upload_id, uploads.c.status == PROCESSING)
                .values(status=FAILED, error_status=status, error_code=code, error_message=message)
            )

    async def processing(self, claimed_before: datetime | None = None) -> list[str]:
        """Ids of the ``processing`` uploads, oldest claim first; with ``claimed_before``,
        only those whose processing was last (re)started before then."""
        query = select(uploads.c.id).where(uploads.c.status == PROCESSING)
        if claimed_before is not None:
            query = query.where(uploads.c.claimed_at < claimed_before)
        async with self.database.read() as connection:
            rows = await connection.execute(query.order_by(uploads.c.claimed_at))
            return [str(row.id) for row in rows]

    async def pending(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` whose upload is not over (``issued`` or ``processing``): the ones
        whose bytes must stay."""
        wanted = list(ids)
        if not wanted:
            return set()
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(uploads.c.id).where(
                    uploads.c.id.in_(wanted), uploads.c.status.in_((ISSUED, PROCESSING))
                )
            )
            return {str(row.id) for row in rows}

    async def expired(self, now: datetime, limit: int = 500) -> list[str]:
        """The ids of up to ``limit`` uploads never completed whose URL expired before
        ``now`` (what :meth:`remove_expired` deletes once their bytes are gone)."""
        async with self.database.read() as connection:
            found = await connection.execute(
                select(uploads.c.id)
                .where(uploads.c.status == ISSUED, uploads.c.expires_at <= now)
                .limit(limit)
            )
            return [str(row.id) for row in found]

    async def remove_expired(self, ids: list[str]) -> int:
        """Delete the rows of ``ids`` that are still never completed (an expired upload
        cannot be completed, so this is every one of :meth:`expired`'s); returns how many."""
        if not ids:
            return 0
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(uploads).where(uploads.c.id.in_(ids), uploads.c.status == ISSUED)
            )
        return int(result.rowcount)
