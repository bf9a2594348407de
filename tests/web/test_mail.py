"""Mail: queued in the outbox, delivered by the sender to a real SMTP server (aiosmtpd, run by
these tests on a loopback port), retried while the server is down or answers 4xx, given up on
a 5xx, delivered once with two senders on one database, throttled per key; AUTH, STARTTLS and
implicit TLS against a certificate made here; and what a service without SMTP answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from anyio import to_thread
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import delete

from tests.conftest import SettingsFactory
from tests.polling import poll_until
from tests.web.smtp_inbox import Inbox, free_port, parsed
from web.database import Database
from web.errors import ApiError
from web.logs import redact_url_passwords
from web.mail.mailer import Mailer, OutgoingMail, build_message
from web.mail.outbox import FAILED, QUEUED, SENT, Outbox
from web.mail.sender import (
    FIRST_RETRY_SECONDS,
    GIVE_UP_AFTER_SECONDS,
    KEEP_SECONDS,
    MailSender,
)
from web.mail.smtp import SmtpDelivery
from web.metrics import MailMetrics
from web.migrate import upgrade
from web.replica import build_mail, build_replica
from web.schema import mail_outbox, mail_throttle
from web.settings import Settings, parse_smtp_url

SENDER = "ImageShark <noreply@example.org>"


async def start_server(inbox: Inbox, port: int = 0, **options: Any) -> Controller:
    """Run aiosmtpd with ``inbox`` on 127.0.0.1 (``port`` 0: a free one) in its thread."""
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port or free_port(), ready_timeout=30, **options
    )
    await to_thread.run_sync(controller.start)
    return controller


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts only the test's certificate (and checks it)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


class Clock:
    """A settable UTC clock for the sender and the mailer."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def database(backend_settings: Settings) -> AsyncIterator[Database]:
    """The backend's database, migrated, with empty mail tables (PostgreSQL's is shared by
    the run's tests)."""
    if backend_settings.embedded:
        await to_thread.run_sync(upgrade, backend_settings)
    db = Database(backend_settings)
    async with db.transaction() as connection:
        await connection.execute(delete(mail_outbox))
        await connection.execute(delete(mail_throttle))
    try:
        yield db
    finally:
        await db.close()


@dataclass
class Mail:
    """A mailer and a sender on one outbox, with their clock and collectors."""

    mailer: Mailer
    sender: MailSender
    outbox: Outbox
    clock: Clock
    metrics: MailMetrics
    registry: CollectorRegistry


def mail_over(database: Database, url: str, tls: ssl.SSLContext | None = None) -> Mail:
    """A mailer and a sender (not started: the test runs its passes) over ``url``'s server."""
    registry = CollectorRegistry()
    metrics = MailMetrics(registry)
    clock = Clock()
    outbox = Outbox(database)
    sender = MailSender(
        outbox, SmtpDelivery(parse_smtp_url(url), tls_context=tls), metrics, clock=clock
    )
    mailer = Mailer(outbox, SENDER, metrics, sender.wake, clock=clock)
    return Mail(mailer, sender, outbox, clock, metrics, registry)


def welcome(to: str = "Guest <guest@example.org>") -> OutgoingMail:
    return OutgoingMail(
        to=(to,),
        subject="Confirm your address",
        text="Open https://photos.example.org/verify/abc to confirm.\n",
        html='<p>Open <a href="https://photos.example.org/verify/abc">this link</a>.</p>\n',
    )


async def test_queued_mail_is_delivered_with_its_headers_and_bodies(
    database: Database, smtp_inbox: tuple[Inbox, int], inbox: Inbox
) -> None:
    mail = mail_over(database, f"smtp://127.0.0.1:{smtp_inbox[1]}")
    mail_id = await mail.mailer.send(welcome())
    queued = await mail.outbox.get(mail_id)
    assert queued is not None and queued.status == QUEUED and inbox.received == []

    assert await mail.sender.run_once() == 1

    assert len(inbox.received) == 1
    envelope = inbox.received[0]
    assert envelope.mail_from == "noreply@example.org"
    assert envelope.rcpt_tos == ["guest@example.org"]
    message = parsed(envelope)
    assert message["From"] == SENDER
    assert message["To"] == "Guest <guest@example.org>"
    assert message["Subject"] == "Confirm your address"
    assert message["Message-ID"].endswith("@example.org>")
    assert abs(message["Date"].datetime - datetime.now(UTC)) < timedelta(hours=1)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "verify/abc to confirm" in text.get_content()
    assert html is not None and '<a href="https://photos.example.org/verify/abc">' in (
        html.get_content()
    )
    sent = await mail.outbox.get(mail_id)
    assert sent is not None and sent.status == SENT and sent.attempts == 1
    assert sent.sent_at == mail.clock.now
    assert sent.message == b""  # the link it carried is not kept
    assert mail.registry.get_sample_value("imageshark_mail_sent_total") == 1
    assert mail.registry.get_sample_value("imageshark_mail_queued_total") == 1
    assert mail.registry.get_sample_value("imageshark_mail_outbox_depth") == 0


async def test_send_returns_while_the_server_holds_a_delivery(
    backend_settings: Settings,
) -> None:
    """Through a started replica: its sender delivers in the background; a mail queued while
    the SMTP server holds the previous one is queued at once, and both arrive after."""
    inbox = Inbox(gate=threading.Event())
    controller = await start_server(inbox)
    settings = backend_settings.model_copy(
        update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{controller.port}")}
    )
    replica = build_replica(settings, renditions_on_demand=True)
    await replica.start()
    try:
        mailer = replica.services.mailer
        first = await mailer.send(welcome("one@example.org"))
        assert await to_thread.run_sync(inbox.entered.wait, 30), "the sender never sent"
        second = await mailer.send(welcome("two@example.org"))  # the server still holds one
        outbox = Outbox(replica.database)
        assert await outbox.statuses([first, second]) == {first: QUEUED, second: QUEUED}
        assert inbox.received == []
        inbox.gate.set()  # type: ignore[union-attr]  # set above

        async def both_sent() -> bool:
            return await outbox.statuses([first, second]) == {first: SENT, second: SENT}

        await poll_until(both_sent, deadline=30, what="both mails sent")
        assert sorted(e.rcpt_tos[0] for e in inbox.received) == [
            "one@example.org",
            "two@example.org",
        ]
        registry = replica.metrics.registry  # what /metrics serves
        assert registry.get_sample_value("imageshark_mail_queued_total") == 2
        assert registry.get_sample_value("imageshark_mail_sent_total") == 2
    finally:
        if inbox.gate is not None:
            inbox.gate.set()
        await replica.stop()
        await to_thread.run_sync(controller.stop)


async def test_mail_waits_while_the_server_is_down_and_goes_once_it_is_up(
    database: Database,
) -> None:
    port = free_port()  # nothing listens there yet
    mail = mail_over(database, f"smtp://127.0.0.1:{port}")
    mail_id = await mail.mailer.send(welcome())

    assert await mail.sender.run_once() == 1
    waiting = await mail.outbox.get(mail_id)
    assert waiting is not None and waiting.status == QUEUED and waiting.attempts == 1
    assert waiting.next_attempt_at == mail.clock.now + timedelta(seconds=FIRST_RETRY_SECONDS)
    assert waiting.last_error is not None and waiting.last_error.startswith("SMTPConnect")
    assert mail.registry.get_sample_value("imageshark_mail_attempt_failures_total") == 1
    assert mail.registry.get_sample_value("imageshark_mail_outbox_depth") == 1
    assert await mail.sender.run_once() == 0  # not due before the back-off

    inbox = Inbox()
    controller = await start_server(inbox, port)
    try:
        mail.clock.advance(FIRST_RETRY_SECONDS)
        assert await mail.sender.run_once() == 1
    finally:
        await to_thread.run_sync(controller.stop)
    assert [envelope.rcpt_tos for envelope in inbox.received] == [["guest@example.org"]]
    sent = await mail.outbox.get(mail_id)
    assert sent is not None and sent.status == SENT and sent.attempts == 2


async def test_mail_the_server_never_takes_fails_after_the_age_limit(
    database: Database,
) -> None:
    mail = mail_over(database, f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    mail_id = await mail.mailer.send(welcome())
    assert await mail.sender.run_once() == 1
    mail.clock.advance(GIVE_UP_AFTER_SECONDS)
    assert await mail.sender.run_once() == 1
    failed = await mail.outbox.get(mail_id)
    assert failed is not None and failed.status == FAILED and failed.attempts == 2
    assert failed.last_error is not None and failed.last_error.startswith("SMTPConnect")
    assert mail.registry.get_sample_value("imageshark_mail_failed_total", {"reason": "expired"})
    mail.clock.advance(GIVE_UP_AFTER_SECONDS)
    assert await mail.sender.run_once() == 0
    assert await mail.outbox.get(mail_id) is not None  # kept a while, for its error
    mail.clock.advance(KEEP_SECONDS)
    assert await mail.sender.run_once() == 0
    assert await mail.outbox.get(mail_id) is None


async def test_a_temporary_refusal_is_retried_with_a_longer_wait(
    database: Database, smtp_inbox: tuple[Inbox, int], inbox: Inbox
) -> None:
    inbox.refuse["busy@example.org"] = "451 4.3.0 try again later"
    mail = mail_over(database, f"smtp://127.0.0.1:{smtp_inbox[1]}")
    mail_id = await mail.mailer.send(welcome("busy@example.org"))
    assert await mail.sender.run_once() == 1
    mail.clock.advance(FIRST_RETRY_SECONDS)
    assert await mail.sender.run_once() == 1
    waiting = await mail.outbox.get(mail_id)
    assert waiting is not None and waiting.status == QUEUED and waiting.attempts == 2
    assert waiting.last_error is not None and "451" in waiting.last_error
    assert waiting.next_attempt_at == mail.clock.now + timedelta(seconds=2 * FIRST_RETRY_SECONDS)
    del inbox.refuse["busy@example.org"]
    mail.clock.advance(2 * FIRST_RETRY_SECONDS)
    assert await mail.sender.run_once() == 1
    assert [envelope.rcpt_tos for envelope in inbox.received] == [["busy@example.org"]]


async def test_a_permanent_refusal_fails_the_mail_without_retrying(
    database: Database, smtp_inbox: tuple[Inbox, int], inbox: Inbox
) -> None:
    inbox.refuse["gone@example.org"] = "550 5.1.1 no such mailbox"
    mail = mail_over(database, f"smtp://127.0.0.1:{smtp_inbox[1]}")
    mail_id = await mail.mailer.send(welcome("gone@example.org"))
    assert await mail.sender.run_once() == 1
    failed = await mail.outbox.get(mail_id)
    assert failed is not None and failed.status == FAILED and failed.attempts == 1
    assert failed.last_error is not None and "550 5.1.1 no such mailbox" in failed.last_error
    mail.clock.advance(24 * 3600)
    assert await mail.sender.run_once() == 0
    assert inbox.received == []
    assert mail.registry.get_sample_value("imageshark_mail_failed_total", {"reason": "refused"})
    assert mail.registry.get_sample_value("imageshark_mail_outbox_depth") == 0


async def test_two_senders_on_one_database_deliver_each_mail_once(
    backend_settings: Settings, database: Database, smtp_inbox: tuple[Inbox, int], inbox: Inbox
) -> None:
    other = Database(backend_settings)  # a second replica's pool
    try:
        url = f"smtp://127.0.0.1:{smtp_inbox[1]}"
        first, second = mail_over(database, url), mail_over(other, url)
        ids = [await first.mailer.send(welcome(f"guest{n}@example.org")) for n in range(12)]
        await asyncio.gather(first.sender.run_once(), second.sender.run_once())
        assert set((await first.outbox.statuses(ids)).values()) == {SENT}
        sent = [
            mail.registry.get_sample_value("imageshark_mail_sent_total") for mail in (first, second)
        ]
        assert sum(value or 0 for value in sent) == 12
    finally:
        await other.close()
    recipients = sorted(envelope.rcpt_tos[0] for envelope in inbox.received)
    assert recipients == sorted(f"guest{n}@example.org" for n in range(12))
    message_ids = {parsed(envelope)["Message-ID"] for envelope in inbox.received}
    assert len(message_ids) == 12


async def test_a_throttled_key_queues_at_most_one_mail_per_interval(
    backend_settings: Settings, database: Database, smtp_inbox: tuple[Inbox, int]
) -> None:
    other = Database(backend_settings)
    try:
        url = f"smtp://127.0.0.1:{smtp_inbox[1]}"
        here, there = mail_over(database, url), mail_over(other, url)
        there.clock.now = here.clock.now
        built: list[str] = []

        async def digest() -> OutgoingMail:
            built.append("digest")
            return welcome("host@example.org")

        key = "digest:room:42"
        results = await asyncio.gather(
            *(
                mail.mailer.send_at_most_every(key, 600, digest)
                for mail in (here, there, here, there)
            )
        )
        assert len([result for result in results if result is not None]) == 1
        assert built == ["digest"]  # the others never built theirs
        here.clock.advance(599)
        assert await here.mailer.send_at_most_every(key, 600, digest) is None
        assert await here.mailer.send_at_most_every("digest:room:43", 600, digest) is not None
        here.clock.advance(1)
        again = await here.mailer.send_at_most_every(key, 600, digest)
        assert again is not None
        assert len(built) == 3
    finally:
        await other.close()


async def test_without_smtp_the_mailer_is_disabled_and_says_so(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(public_base_url="https://photos.example.org")
    assert settings.smtp is None
    assert settings.mail_sender == "ImageShark <noreply@photos.example.org>"
    database = Database(settings)
    try:
        mailer, sender = build_mail(settings, database, CollectorRegistry())
        assert sender is None and not mailer.enabled
        with pytest.raises(ApiError) as refused:
            mailer.require()
        assert (refused.value.status, refused.value.code) == (503, "mail_unavailable")
        with pytest.raises(ApiError) as not_sent:
            await mailer.send(welcome())
        response = not_sent.value.to_response()
        assert response.status_code == 503
        assert b'"code":"mail_unavailable"' in response.body
    finally:
        await database.close()


@pytest.mark.parametrize("scheme", ["smtp", "smtp+starttls"])
async def test_auth_with_user_and_password(
    database: Database, certificate: tuple[Path, Path], scheme: str
) -> None:
    """AUTH over plain text (aiosmtpd told to allow it) and after a required STARTTLS; a wrong
    password is a permanent refusal (535)."""
    inbox = Inbox()
    starttls = scheme == "smtp+starttls"
    controller = await start_server(
        inbox,
        authenticator=inbox.authenticate,
        # Required only with TLS: aiosmtpd warns about requiring it over plain text.
        auth_required=starttls,
        auth_require_tls=starttls,
        tls_context=server_tls(certificate) if starttls else None,
        require_starttls=starttls,
    )
    try:
        good = mail_over(
            database,
            f"{scheme}://mailer:s3cret%2Fpw@127.0.0.1:{controller.port}",
            client_tls(certificate),
        )
        sent_id = await good.mailer.send(welcome())
        assert await good.sender.run_once() == 1
        bad = mail_over(
            database,
            f"{scheme}://mailer:wrong@127.0.0.1:{controller.port}",
            client_tls(certificate),
        )
        refused_id = await bad.mailer.send(welcome("other@example.org"))
        assert await bad.sender.run_once() == 1
    finally:
        await to_thread.run_sync(controller.stop)
    assert await good.outbox.statuses([sent_id, refused_id]) == {
        sent_id: SENT,
        refused_id: FAILED,
    }
    assert (b"mailer", b"s3cret/pw") in inbox.logins and (b"mailer", b"wrong") in inbox.logins
    assert [envelope.rcpt_tos for envelope in inbox.received] == [["guest@example.org"]]
    refused = await bad.outbox.get(refused_id)
    assert refused is not None and refused.last_error is not None
    assert refused.last_error.startswith("535")


async def test_implicit_tls_checks_the_certificate(
    database: Database, certificate: tuple[Path, Path]
) -> None:
    inbox = Inbox()
    controller = await start_server(inbox, ssl_context=server_tls(certificate))
    try:
        trusting = mail_over(
            database, f"smtps://127.0.0.1:{controller.port}", client_tls(certificate)
        )
        sent_id = await trusting.mailer.send(welcome())
        assert await trusting.sender.run_once() == 1
        # The system's CAs do not know the test's certificate: refused, and tried again later.
        untrusting = mail_over(database, f"smtps://127.0.0.1:{controller.port}")
        waiting_id = await untrusting.mailer.send(welcome("other@example.org"))
        assert await untrusting.sender.run_once() == 1
    finally:
        await to_thread.run_sync(controller.stop)
    assert await trusting.outbox.statuses([sent_id, waiting_id]) == {
        sent_id: SENT,
        waiting_id: QUEUED,
    }
    assert [envelope.rcpt_tos for envelope in inbox.received] == [["guest@example.org"]]


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password", "verify"),
    [
        ("smtp://mail.example.org", "mail.example.org", 25, "opportunistic", None, None, True),
        (
            "smtp+starttls://me%40example.org:p%40ss@mail.example.org",
            "mail.example.org",
            587,
            "starttls",
            "me@example.org",
            "p@ss",
            True,
        ),
        (
            "smtps://u:pw-secret@10.0.0.5:2465?verify=false",
            "10.0.0.5",
            2465,
            "implicit",
            "u",
            "pw-secret",
            False,
        ),
    ],
)
def test_smtp_urls_are_parsed(
    url: str,
    host: str,
    port: int,
    tls: str,
    user: str | None,
    password: str | None,
    verify: bool,
) -> None:
    server = parse_smtp_url(url)
    assert (server.host, server.port, server.tls) == (host, port, tls)
    assert (server.username, server.password, server.verify) == (user, password, verify)
    if password is not None:
        assert password not in repr(server)


@pytest.mark.parametrize(
    "url", ["http://mail.example.org", "smtp://", "smtp://h:99999", "smtp://h?tls=1", "smtp://h/x"]
)
def test_bad_smtp_urls_are_refused_at_start_up(make_settings: SettingsFactory, url: str) -> None:
    with pytest.raises(ValueError, match="SMTP URL"):
        make_settings(smtp_url=url)


def test_smtp_passwords_stay_out_of_settings_and_logs(make_settings: SettingsFactory) -> None:
    settings = make_settings(smtp_url="smtps://mailer:hunter2@mail.example.org")
    assert "hunter2" not in repr(settings)
    assert settings.mail_sender == "ImageShark <noreply@mail.example.org>"
    line = redact_url_passwords("connect failed: smtps://mailer:hunter2@mail.example.org:465")
    assert line == "connect failed: smtps://mailer:[redacted]@mail.example.org:465"
    with pytest.raises(ValueError, match="not a mail address"):
        make_settings(mail_from="ImageShark")


def test_messages_refuse_header_injection_and_non_addresses() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        build_message(OutgoingMail(("a@example.org",), "Hi\nBcc: x@example.org", "t"), SENDER)
    with pytest.raises(ValueError, match="not mail addresses"):
        build_message(OutgoingMail(("nobody",), "Hi", "t"), SENDER)
    queued = build_message(OutgoingMail(("a@example.org",), "Hi", "plain"), SENDER)
    assert queued.recipients == ("a@example.org",) and b"\r\n" in queued.message
    assert b"multipart" not in queued.message  # no HTML: a single text/plain part
