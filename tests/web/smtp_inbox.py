"""A real SMTP server for the mail tests: aiosmtpd's handler keeping what it received, and the
fixtures (in tests/web/conftest.py) running one per test module on a loopback port."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class Inbox:
    """An aiosmtpd handler keeping what it received; it refuses the recipients named in
    ``refuse`` with their reply, and holds each DATA until ``gate`` is set when one is given
    (``entered`` is set when a DATA arrives)."""

    received: list[Envelope] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.entered.set()
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 60)
        self.received.append(envelope)
        return "250 Message accepted"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: ``mailer`` / ``s3cret/pw`` only."""
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        # handled=False: aiosmtpd answers the refusal (535) itself.
        ok = (data.login, data.password) == (b"mailer", b"s3cret/pw")
        return AuthResult(success=ok, handled=False)


def parsed(envelope: Envelope) -> EmailMessage:
    """The message of a received envelope."""
    assert isinstance(envelope.original_content, bytes)
    message = email.message_from_bytes(envelope.original_content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def free_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
