"""Handing one message to the SMTP server (aiosmtplib), and telling passing failures from
final ones.

A reply code of 5xx is permanent and 4xx temporary (RFC 5321 section 4.2.1); a server that
cannot be reached, drops the connection or does not answer in time is temporary too.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from web.settings import SmtpServer

TIMEOUT_SECONDS = 30
"""Longest wait for the server's answer to each step (connect, each command), seconds."""


class DeliveryError(Exception):
    """The server did not take a message.

    :ivar permanent: True for a refusal that sending again would not change (5xx).
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmtpDelivery:
    """Sends messages to one SMTP server, a new connection each (mail here is rare: a few a
    minute at most, so no connection is kept open).

    :param server: the parsed ``IMAGESHARK_SMTP_URL``.
    :param tls_context: the TLS settings (trusted CAs); None: the system's defaults, or no
        certificate check when the URL says ``verify=false``.
    :param timeout_seconds: see :data:`TIMEOUT_SECONDS`.
    """

    def __init__(
        self,
        server: SmtpServer,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self.server = server
        self.tls_context = tls_context
        self.timeout_seconds = timeout_seconds

    async def deliver(self, sender: str, recipients: tuple[str, ...], message: bytes) -> None:
        """Send ``message`` (RFC 5322 bytes) from ``sender`` to ``recipients`` (bare
        addresses); returns once the server accepted it for at least one recipient.

        :raises DeliveryError: not accepted; ``permanent`` for a 5xx refusal (of every
            recipient, the sender, the data or the credentials).
        """
        server = self.server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.tls == "implicit",
            # None: STARTTLS when the server offers it (aiosmtplib's opportunistic mode).
            start_tls={"starttls": True, "implicit": False}.get(server.tls),
            validate_certs=server.verify,
            tls_context=self.tls_context,
            timeout=self.timeout_seconds,
        )
        try:
            async with client:
                await client.sendmail(sender, list(recipients), message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = "; ".join(f"{each.code} {each.message}" for each in exc.recipients)
            raise DeliveryError(
                f"every recipient refused: {refusals}",
                permanent=all(each.code >= 500 for each in exc.recipients),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
