"""The digest of photos waiting for approval: when a photo enters a moderated room's queue,
its owner account (``rooms.owner_account_id``) is mailed how many wait, at most once per room
per ``IMAGESHARK_PENDING_DIGEST_MINUTES`` (the throttle is kept by the mailer, shared by every
replica). Only a verified, enabled owner who keeps ``notify_pending`` on (the default;
``PATCH /api/me``) is mailed; without SMTP nothing is.
"""

from __future__ import annotations

import logging
from email.utils import parseaddr

from web.accounts import mails
from web.accounts.repository import AccountRepository
from web.database import Database
from web.images.repository import ImageRepository
from web.mail.mailer import Mailer, OutgoingMail
from web.rooms.repository import Room
from web.settings import Settings

logger = logging.getLogger(__name__)


class PendingDigest:
    """Mails a room's owner that photos wait for approval, throttled per room.

    :param database: for the queue's length when a mail is due.
    :param accounts: reads the owner account.
    :param mailer: queues the mail (``send_at_most_every``).
    :param settings: ``pending_digest_minutes``; ``public_base_url`` for the host page's link
        (unset: the mail names the room without a link, an upload has no request to take
        the host from).
    """

    def __init__(
        self, database: Database, accounts: AccountRepository, mailer: Mailer, settings: Settings
    ) -> None:
        self.database = database
        self.accounts = accounts
        self.mailer = mailer
        self.settings = settings

    async def photo_pending(self, room: Room) -> None:
        """Called after a photo of ``room`` entered its moderation queue (committed): queue
        the digest unless one went out for this room within the interval. Never raises for
        mail or database trouble: it is logged and the upload stands.
        """
        if not self.mailer.enabled or room.owner_account_id is None:
            return
        try:
            owner = await self.accounts.by_id(room.owner_account_id)
            if (
                owner is None
                or not owner.email_verified
                or owner.disabled
                or not owner.notify_pending
                or parseaddr(owner.email)[1] != owner.email  # would reach another mailbox
            ):
                return

            async def digest() -> OutgoingMail:
                async with self.database.direct_read() as statements:
                    pending = await ImageRepository.pending_count(statements, room.id)
                base = self.settings.public_base_url
                host_url = f"{base.rstrip('/')}/r/{room.token}/host" if base else None
                return mails.pending_digest_mail(owner.email, room.title, pending, host_url)

            await self.mailer.send_at_most_every(
                f"pending:{room.id}", self.settings.pending_digest_minutes * 60, digest
            )
        except Exception:
            logger.warning(
                "pending photo digest not queued", exc_info=True, extra={"room_id": room.id}
            )
