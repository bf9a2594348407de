"""SQL of the mail outbox: every query on ``mail_outbox`` and ``mail_throttle`` lives here.

A mail is ``queued`` until a sender delivers it (``sent``) or gives up on it (``failed``). A
sender claims one due mail in one statement that moves its ``next_attempt_at`` past the
delivery (a lease): on PostgreSQL the row is picked ``FOR UPDATE SKIP LOCKED``, so replicas
claiming at once each get another mail; on SQLite the single statement holds the write lock.
A sender that dies mid-delivery leaves the lease to lapse, and the mail is sent again then
(delivery is at least once; only a crash between the server's acceptance and the commit of
``sent`` repeats one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from web.database import Database
from web.schema import mail_outbox, mail_throttle

QUEUED = "queued"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """A message as the outbox keeps it.

    :ivar sender: the envelope sender (MAIL FROM), a bare address.
    :ivar recipients: the envelope recipients (RCPT TO), bare addresses.
    :ivar message: the whole RFC 5322 message, CRLF line ends, as sent.
    """

    sender: str
    recipients: tuple[str, ...]
    message: bytes


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A ``mail_outbox`` row.

    :ivar attempts: delivery attempts begun so far (the claim counts one).
    :ivar next_attempt_at: when it is due (while claimed: when the claim lapses).
    """

    id: int
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


def _mail(row: Any) -> OutboxMail:
    values = dict(row._mapping)
    values["recipients"] = tuple(values["recipients"])
    values["message"] = bytes(values["message"])
    return OutboxMail(**values)


class Outbox:
    """Reads and writes the outbox; each call is its own short transaction.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def enqueue(self, mail: QueuedMail, now: datetime) -> int:
        """Queue ``mail``, due at ``now``; returns its id."""
        async with self.database.transaction() as connection:
            return await self._insert(connection, mail, now)

    async def enqueue_throttled(
        self,
        key: str,
        interval_seconds: float,
        now: datetime,
        build: Callable[[], Awaitable[QueuedMail]],
    ) -> int | None:
        """Queue the mail ``build`` makes unless a mail of ``key`` was queued less than
        ``interval_seconds`` before ``now``, by any replica.

        The key's row is taken and its time moved to ``now`` by one ``INSERT ... ON CONFLICT
        DO UPDATE ... WHERE`` (a concurrent caller waits for this transaction, then finds the
        interval not over); the mail goes in in the same transaction, so a failed ``build``
        takes nothing.

        :param key: up to 200 characters, e.g. ``"digest:room:42"``.
        :param build: called only when the interval is over; keep it short (the key's row is
            held while it runs).
        :returns: the queued mail's id, or None when the interval is not over.
        """
        values = {"key": key, "last_sent_at": now}
        dialect = sqlite if self.database.is_sqlite else postgresql
        claim = (
            dialect.insert(mail_throttle)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[mail_throttle.c.key],
                set_={"last_sent_at": now},
                where=mail_throttle.c.last_sent_at <= now - timedelta(seconds=interval_seconds),
            )
            .returning(mail_throttle.c.key)
        )
        async with self.database.transaction() as connection:
            if (await connection.execute(claim)).first() is None:
                return None
            return await self._insert(connection, await build(), now)

    @staticmethod
    async def _insert(connection: Any, mail: QueuedMail, now: datetime) -> int:
        result = await connection.execute(
            insert(mail_outbox)
            .values(
                sender=mail.sender,
                recipients=list(mail.recipients),
                message=mail.message,
                status=QUEUED,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(mail_outbox.c.id)
        )
        return int(result.scalar_one())

    async def claim(self, now: datetime, lease_seconds: float) -> OutboxMail | None:
        """Take the queued mail due longest ago (``next_attempt_at <= now``), counting an
        attempt and moving ``next_attempt_at`` to ``now + lease_seconds``; None when nothing
        is due. Rows another sender is claiming are skipped, not waited for."""
        due = (
            select(mail_outbox.c.id)
            .where(mail_outbox.c.status == QUEUED, mail_outbox.c.next_attempt_at <= now)
            .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # SQLite: no such clause; the write lock does it
            .scalar_subquery()
        )
        statement = (
            update(mail_outbox)
            .where(mail_outbox.c.id == due)
            .values(
                attempts=mail_outbox.c.attempts + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds),
            )
            .returning(*mail_outbox.c)
        )
        async with self.database.transaction() as connection:
            row = (await connection.execute(statement)).first()
        return _mail(row) if row is not None else None

    async def mark_sent(self, mail_id: int, now: datetime) -> None:
        """Record that the server accepted mail ``mail_id`` at ``now``, and drop its content
        (the links it carried need not outlive the delivery in the database)."""
        await self._finish(mail_id, status=SENT, sent_at=now, message=b"")

    async def mark_failed(self, mail_id: int, error: str) -> None:
        """Give up on mail ``mail_id`` with ``error`` (a permanent refusal, or too many
        attempts)."""
        await self._finish(mail_id, status=FAILED, last_error=error)

    async def retry_at(self, mail_id: int, at: datetime, error: str) -> None:
        """Leave mail ``mail_id`` queued, due again at ``at``, with ``error``."""
        await self._finish(mail_id, next_attempt_at=at, last_error=error)

    async def _finish(self, mail_id: int, **values: Any) -> None:
        async with self.database.transaction() as connection:
            await connection.execute(
                update(mail_outbox)
                .where(mail_outbox.c.id == mail_id, mail_outbox.c.status == QUEUED)
                .values(**values)
            )

    async def purge(self, before: datetime) -> int:
        """Delete the sent and failed mails queued before ``before``; returns how many."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(mail_outbox).where(
                    mail_outbox.c.status != QUEUED, mail_outbox.c.created_at < before
                )
            )
        return int(result.rowcount)

    async def get(self, mail_id: int) -> OutboxMail | None:
        """The mail ``mail_id``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(select(*mail_outbox.c).where(mail_outbox.c.id == mail_id))
            ).first()
        return _mail(row) if row is not None else None

    async def backlog(self) -> tuple[int, datetime | None]:
        """The queued mails: how many, and when the oldest was queued (None: none)."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(func.count(), func.min(mail_outbox.c.created_at)).where(
                        mail_outbox.c.status == QUEUED
                    )
                )
            ).one()
        count, oldest = row  # min() keeps the column's type: a UTC datetime
        return int(count), oldest

    async def statuses(self, mail_ids: Sequence[int]) -> dict[int, str]:
        """The status of each of ``mail_ids`` that exists."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(mail_outbox.c.id, mail_outbox.c.status).where(
                    mail_outbox.c.id.in_(list(mail_ids))
                )
            )
        return {int(row.id): str(row.status) for row in rows}
