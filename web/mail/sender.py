"""Each replica's background delivery of the outbox.

:class:`MailSender` claims due mail one at a time (:meth:`Outbox.claim`), hands it to the SMTP
server and records the outcome: ``sent``; queued again after a back-off on a temporary
failure, until :data:`MAX_ATTEMPTS` or :data:`GIVE_UP_AFTER_SECONDS`; ``failed`` at once on a
permanent (5xx) refusal. It wakes when this replica queues mail and every
:data:`POLL_SECONDS` for mail other replicas queued or retries fell due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from web.mail.outbox import Outbox, OutboxMail
from web.mail.smtp import DeliveryError
from web.metrics import MailMetrics

logger = logging.getLogger(__name__)

# Retry timing after RFC 5321 section 4.5.4.1 (retry later, give up after days), shortened
# because what is mailed here (verification and reset links) expires within hours or days.
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600
MAX_ATTEMPTS = 12
GIVE_UP_AFTER_SECONDS = 2 * 24 * 3600
LEASE_SECONDS = 600
"""How long a claim holds a mail: past every step's timeout of one delivery, seconds."""
POLL_SECONDS = 10
"""How often an idle sender looks for mail other replicas queued, seconds."""
KEEP_SECONDS = 7 * 24 * 3600
"""How long sent and failed mails stay in the outbox (their attempts, their errors), seconds."""
PURGE_PERIOD_SECONDS = 3600
"""How often a sender deletes the mails past :data:`KEEP_SECONDS`, seconds."""


class Delivery(Protocol):
    """Hands one message to the mail server (:class:`web.mail.smtp.SmtpDelivery`)."""

    async def deliver(self, sender: str, recipients: tuple[str, ...], message: bytes) -> None:
        """Send ``message``; raises :class:`DeliveryError` when it was not accepted."""
        ...


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def retry_delay_seconds(attempts: int) -> float:
    """The wait before the next attempt after ``attempts`` failed ones (1, 2, ...): 60 s,
    doubling, at most an hour."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS))


class MailSender:
    """Delivers this replica's share of the outbox, in a task of its own.

    :param outbox: the outbox's SQL.
    :param delivery: the SMTP server's client.
    :param metrics: the mail collectors (sent, failed, backlog).
    :param clock: the current time (tests move it to make retries due).
    :param poll_seconds: see :data:`POLL_SECONDS`.
    """

    def __init__(
        self,
        outbox: Outbox,
        delivery: Delivery,
        metrics: MailMetrics,
        *,
        clock: Callable[[], datetime] = utc_now,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.outbox = outbox
        self.delivery = delivery
        self.metrics = metrics
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._purged_at: datetime | None = None

    def wake(self) -> None:
        """Look for due mail now (called when this replica queued some)."""
        self._wake.set()

    async def start(self) -> None:
        """Start delivering in a background task."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the task; a delivery it interrupts is sent again when its claim lapses."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> int:
        """Deliver the mail due now, until none is left or the server fails temporarily (the
        rest would fail alike); then refresh the backlog gauges, and at most every
        :data:`PURGE_PERIOD_SECONDS` delete the mails kept past :data:`KEEP_SECONDS`.

        :returns: how many mails were attempted.
        :raises sqlalchemy.exc.DBAPIError: the database failed.
        """
        attempted = 0
        while (mail := await self.outbox.claim(self.clock(), LEASE_SECONDS)) is not None:
            attempted += 1
            if not await self._attempt(mail):
                break
        now = self.clock()
        count, oldest = await self.outbox.backlog()
        self.metrics.set_backlog(count, oldest, now)
        if self._purged_at is None or (now - self._purged_at).total_seconds() >= (
            PURGE_PERIOD_SECONDS
        ):
            await self.outbox.purge(now - timedelta(seconds=KEEP_SECONDS))
            self._purged_at = now
        return attempted

    async def _attempt(self, mail: OutboxMail) -> bool:
        """Deliver one claimed mail and record the outcome; False after a temporary
        failure."""
        try:
            await self.delivery.deliver(mail.sender, mail.recipients, mail.message)
        except DeliveryError as exc:
            now = self.clock()
            expired = (
                mail.attempts >= MAX_ATTEMPTS
                or (now - mail.created_at).total_seconds() >= GIVE_UP_AFTER_SECONDS
            )
            if exc.permanent or expired:
                logger.warning("mail %d failed after %d attempts: %s", mail.id, mail.attempts, exc)
                await self.outbox.mark_failed(mail.id, str(exc))
                self.metrics.failed.labels(reason="refused" if exc.permanent else "expired").inc()
                return True
            retry_at = now + timedelta(seconds=retry_delay_seconds(mail.attempts))
            logger.info("mail %d not sent (%s); next attempt at %s", mail.id, exc, retry_at)
            await self.outbox.retry_at(mail.id, retry_at, str(exc))
            self.metrics.attempt_failures.inc()
            return False
        await self.outbox.mark_sent(mail.id, self.clock())
        self.metrics.sent.inc()
        return True

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:  # database briefly down: try again next period
                logger.warning("mail delivery pass failed", exc_info=True)
            with contextlib.suppress(TimeoutError):  # the poll's period is over
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
