"""What features call to send mail: :class:`Mailer`, and the message they describe.

``send`` only queues (one INSERT into the outbox) and wakes this replica's sender, so a slow
or unreachable mail server never holds up a request. Without ``IMAGESHARK_SMTP_URL`` the
mailer is not ``enabled``: ``send`` raises :func:`mail_unavailable`, which features check
(:meth:`Mailer.require`) before starting what would need a mail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from web.errors import ApiError
from web.mail.outbox import Outbox, QueuedMail
from web.mail.sender import utc_now
from web.metrics import MailMetrics


def mail_unavailable() -> ApiError:
    """``503 mail_unavailable``: the service sends no mail (no ``IMAGESHARK_SMTP_URL``), so
    what needs one (a verification or reset link, an invitation) cannot be done here."""
    return ApiError(
        503,
        "mail_unavailable",
        "This service is not set up to send mail (IMAGESHARK_SMTP_URL); ask its operator.",
    )


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A mail to send.

    :ivar to: recipients, each ``user@host`` or ``Name <user@host>``.
    :ivar text: the plain-text body (always sent).
    :ivar html: an HTML alternative of the same content, or None.
    """

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


def build_message(mail: OutgoingMail, sender: str) -> QueuedMail:
    """The RFC 5322 message of ``mail`` from ``sender`` (``Name <user@host>``), with ``Date``
    and a ``Message-ID`` on the sender's domain, text and, when given, an HTML alternative
    (``multipart/alternative``); and its envelope.

    :raises ValueError: a recipient or the sender is not an address, there is no recipient,
        or the subject holds a line break (header injection, refused by ``email``).
    """
    envelope_sender = parseaddr(sender)[1]
    recipients = tuple(parseaddr(address)[1] for address in mail.to)
    if "@" not in envelope_sender or not recipients or any("@" not in r for r in recipients):
        raise ValueError(f"not mail addresses: from {sender!r} to {mail.to!r}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utc_now())
    message["Message-ID"] = make_msgid(domain=envelope_sender.rpartition("@")[2])
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return QueuedMail(envelope_sender, recipients, message.as_bytes(policy=SMTP))


class Mailer:
    """Queues mail for delivery by every replica's sender.

    :param outbox: the outbox's SQL, or None: no SMTP server configured (not ``enabled``).
    :param sender: the From of every mail (``Settings.mail_sender``).
    :param metrics: counts queued mail.
    :param wake: called after each queued mail (this replica's sender looks at once).
    :param clock: the current time (when mail is due; tests move it past a throttle).
    """

    def __init__(
        self,
        outbox: Outbox | None,
        sender: str,
        metrics: MailMetrics,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.clock = clock
        self.outbox = outbox
        self.sender = sender
        self.metrics = metrics
        self.wake = wake

    @property
    def enabled(self) -> bool:
        """Whether mail can be sent (an SMTP server is configured)."""
        return self.outbox is not None

    def require(self) -> None:
        """Check, before a feature starts what will need a mail, that mail can be sent.

        :raises ApiError: ``503 mail_unavailable`` when not :attr:`enabled`.
        """
        self._outbox()

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise mail_unavailable()
        return self.outbox

    async def send(self, mail: OutgoingMail) -> int:
        """Queue ``mail``; returns its outbox id at once (delivery happens in the background,
        retried for up to two days).

        :raises ApiError: ``503 mail_unavailable`` when not :attr:`enabled`.
        :raises ValueError: see :func:`build_message`.
        :raises sqlalchemy.exc.DBAPIError: the database failed.
        """
        outbox = self._outbox()
        mail_id = await outbox.enqueue(build_message(mail, self.sender), self.clock())
        self.metrics.queued.inc()
        self.wake()
        return mail_id

    async def send_at_most_every(
        self, key: str, seconds: float, build: Callable[[], Awaitable[OutgoingMail]]
    ) -> int | None:
        """Queue the mail ``build`` makes unless one of ``key`` was queued in the last
        ``seconds``, by any replica (kept in the database: ``mail_throttle``). A digest of
        photos waiting for approval calls it with ``"pending:<room id>"`` at each new photo.

        :param key: names what is throttled, up to 200 characters.
        :param seconds: the least time between two mails of ``key``.
        :param build: makes the mail; only called when one is due (so what it reads is
            current). The key stays taken while it runs: keep it to a quick read.
        :returns: the queued mail's id, or None when the last one is too recent.
        :raises ApiError: ``503 mail_unavailable`` when not :attr:`enabled`.
        """
        outbox = self._outbox()

        async def queued() -> QueuedMail:
            return build_message(await build(), self.sender)

        mail_id = await outbox.enqueue_throttled(key, seconds, self.clock(), queued)
        if mail_id is not None:
            self.metrics.queued.inc()
            self.wake()
        return mail_id
