"""Mail of host accounts, through the app and a real SMTP server (aiosmtpd): the verification
link of a sign-up, the notice to an address that signs up again, password reset by a
single-use expiring link, and what a service without SMTP answers.

The app's own mail sender delivers in the background; tests wait for each mail to arrive
(:func:`mails_to`). Expiry is reached by moving a stored token's ``expires_at`` back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import unquote

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from tests.conftest import AppClient, _app_client
from tests.polling import poll_until
from tests.web.accounts_helpers import PASSWORD, session, sign_in, sign_up
from tests.web.smtp_inbox import Inbox, parsed
from tests.web.test_host_controls import join, photo
from tests.web.test_images import upload
from web.database import Database
from web.rooms.service import utc_now
from web.schema import account_tokens, accounts, mail_outbox, mail_throttle, rooms
from web.settings import Settings

NEW_PASSWORD = "a new and longer passphrase"
BASE = "https://photos.example.org"


@pytest.fixture
async def mail_client(
    backend_settings: Settings, smtp_inbox: tuple[Inbox, int], inbox: Inbox
) -> AsyncIterator[AppClient]:
    """The app sending mail to the module's aiosmtpd server, links on :data:`BASE`."""
    settings = backend_settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{smtp_inbox[1]}"),
            "public_base_url": BASE,
        }
    )
    async for client in _app_client(settings):
        yield client


def address(name: str) -> str:
    """A fresh address (PostgreSQL's database is shared by the run's tests)."""
    return f"{name}.{uuid.uuid4().hex[:8]}@example.org"


async def mails_to(inbox: Inbox, to: str, count: int = 1) -> list[EmailMessage]:
    """Wait until ``count`` mails to ``to`` arrived; them, oldest first."""

    def received() -> list[EmailMessage]:
        found = [parsed(envelope) for envelope in inbox.received if to in envelope.rcpt_tos]
        return found if len(found) >= count else []

    return await poll_until(received, deadline=30, what=f"{count} mail(s) to {to}")


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_token(message: EmailMessage, path: str) -> str:
    """The token of the ``{BASE}{path}?token=`` link in the mail's text (and its HTML)."""
    found = re.search(re.escape(f"{BASE}{path}?token=") + r"(\S+)", body_text(message))
    assert found is not None, body_text(message)
    html = message.get_body(("html",))
    assert html is not None and found.group(1) in str(html.get_content())
    return unquote(found.group(1))


async def expire_tokens(settings: Settings, email: str) -> None:
    database = Database(settings)
    try:
        async with database.transaction() as connection:
            account_id = (
                await connection.execute(select(accounts.c.id).where(accounts.c.email == email))
            ).scalar_one()
            await connection.execute(
                update(account_tokens)
                .where(account_tokens.c.account_id == account_id)
                .values(expires_at=utc_now() - timedelta(seconds=1))
            )
    finally:
        await database.close()


async def queued_recipients(settings: Settings) -> list[str]:
    database = Database(settings)
    try:
        async with database.read() as connection:
            rows = await connection.execute(select(mail_outbox.c.recipients))
            return [to for (recipients,) in rows for to in recipients]
    finally:
        await database.close()


async def test_the_sign_up_mail_verifies_the_address_once(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("vera")
    created = await sign_up(mail_client, email)
    assert created.status_code == 201 and created.json()["email_verified"] is False
    (mail,) = await mails_to(inbox, email)
    assert mail["Subject"] == "Confirm your e-mail address for ImageShark"
    token = link_token(mail, "/verify")

    verified = await mail_client.http.post("/api/accounts/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email"] == email and verified.json()["email_verified"] is True
    me = await mail_client.http.get("/api/me", headers=session(await sign_in(mail_client, email)))
    assert me.json()["email_verified"] is True

    reused = await mail_client.http.post("/api/accounts/verify", json={"token": token})
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "token_used")
    unknown = await mail_client.http.post("/api/accounts/verify", json={"token": "nope"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "token_not_found")


async def test_an_expired_verification_link_is_refused_and_changes_nothing(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("exp")
    await sign_up(mail_client, email)
    token = link_token((await mails_to(inbox, email))[0], "/verify")
    await expire_tokens(mail_client.settings, email)
    expired = await mail_client.http.post("/api/accounts/verify", json={"token": token})
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "token_expired")
    me = await mail_client.http.get("/api/me", headers=session(await sign_in(mail_client, email)))
    assert me.json()["email_verified"] is False


async def test_a_signed_in_account_asks_for_a_new_verification_mail(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("again")
    await sign_up(mail_client, email)
    await mails_to(inbox, email)
    cookie = session(await sign_in(mail_client, email))
    resent = await mail_client.http.post("/api/me/verification", headers=cookie)
    assert resent.status_code == 202, resent.text
    first, second = await mails_to(inbox, email, 2)
    token = link_token(second, "/verify")
    assert token != link_token(first, "/verify")
    assert (
        await mail_client.http.post("/api/accounts/verify", json={"token": token})
    ).status_code == 200
    done = await mail_client.http.post("/api/me/verification", headers=cookie)
    assert (done.status_code, done.json()["error"]["code"]) == (409, "already_verified")
    anonymous = await mail_client.http.post("/api/me/verification")
    assert anonymous.status_code == 401


async def test_signing_up_a_taken_address_mails_its_holder_and_changes_nothing(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("taken")
    first = await sign_up(mail_client, email, name="Owner")
    await mails_to(inbox, email)
    again = await sign_up(mail_client, email, password=NEW_PASSWORD, name="Owner")
    assert again.status_code == first.status_code == 201
    assert {k: v for k, v in again.json().items() if k != "created_at"} == {
        k: v for k, v in first.json().items() if k != "created_at"
    }
    _, notice = await mails_to(inbox, email, 2)
    assert notice["Subject"] == "Someone tried to sign up with your address on ImageShark"
    assert "/verify?token=" not in body_text(notice)
    assert f"{BASE}/signin" in body_text(notice)
    assert (await sign_in(mail_client, email)).status_code == 200
    assert (await sign_in(mail_client, email, NEW_PASSWORD)).status_code == 401


async def test_an_address_a_mail_header_reads_as_another_is_never_mailed(
    mail_client: AppClient, inbox: Inbox
) -> None:
    """``x(comment)@host`` is ``x@host`` to RFC 5322: its links would reach someone else."""
    tag = uuid.uuid4().hex[:8]
    tricky, other = f"victim{tag}(x)@example.org", f"victim{tag}@example.org"
    assert (await sign_up(mail_client, tricky)).status_code == 201
    reset = await mail_client.http.post("/api/password-reset", json={"email": tricky})
    assert reset.status_code == 202
    recipients = await queued_recipients(mail_client.settings)
    assert other not in recipients and tricky not in recipients


async def test_a_password_reset_answers_alike_and_mails_only_an_account(
    mail_client: AppClient, inbox: Inbox
) -> None:
    known, unknown = address("known"), address("unknown")
    await sign_up(mail_client, known)
    await mails_to(inbox, known)
    for_unknown = await mail_client.http.post("/api/password-reset", json={"email": unknown})
    for_known = await mail_client.http.post("/api/password-reset", json={"email": known})
    assert for_unknown.status_code == for_known.status_code == 202
    assert for_unknown.content == for_known.content
    _, reset = await mails_to(inbox, known, 2)
    assert reset["Subject"] == "Reset your ImageShark password"
    link_token(reset, "/reset")
    # Every mail queued is in the outbox, sent or not: none was ever for the unknown address.
    recipients = await queued_recipients(mail_client.settings)
    assert known in recipients and unknown not in recipients


async def test_a_reset_sets_the_password_and_signs_out_everywhere_once(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("reset")
    await sign_up(mail_client, email)
    verification = link_token((await mails_to(inbox, email))[0], "/verify")
    old_session = session(await sign_in(mail_client, email))
    await mail_client.http.post("/api/password-reset", json={"email": email})
    token = link_token((await mails_to(inbox, email, 2))[1], "/reset")

    weak = await mail_client.http.post(
        "/api/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert (weak.status_code, weak.json()["error"]["code"]) == (422, "invalid_password")
    wrong_purpose = await mail_client.http.post(
        "/api/password-reset/confirm", json={"token": verification, "password": NEW_PASSWORD}
    )
    assert (wrong_purpose.status_code, wrong_purpose.json()["error"]["code"]) == (
        404,
        "token_not_found",
    )
    reset_as_verify = await mail_client.http.post("/api/accounts/verify", json={"token": token})
    assert reset_as_verify.status_code == 404

    confirmed = await mail_client.http.post(
        "/api/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["email_verified"] is True
    assert (await mail_client.http.get("/api/me", headers=old_session)).status_code == 401
    assert (await sign_in(mail_client, email, PASSWORD)).status_code == 401
    assert (await sign_in(mail_client, email, NEW_PASSWORD)).status_code == 200

    reused = await mail_client.http.post(
        "/api/password-reset/confirm", json={"token": token, "password": PASSWORD}
    )
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "token_used")
    assert (await sign_in(mail_client, email, NEW_PASSWORD)).status_code == 200


async def test_an_expired_reset_link_is_refused_and_changes_nothing(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("late")
    await sign_up(mail_client, email)
    await mails_to(inbox, email)
    await mail_client.http.post("/api/password-reset", json={"email": email})
    token = link_token((await mails_to(inbox, email, 2))[1], "/reset")
    await expire_tokens(mail_client.settings, email)
    expired = await mail_client.http.post(
        "/api/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "token_expired")
    assert (await sign_in(mail_client, email, PASSWORD)).status_code == 200


async def test_without_smtp_sign_up_works_and_reset_says_mail_is_unavailable(
    backend_client: AppClient,
) -> None:
    email = address("nomail")
    assert (await sign_up(backend_client, email)).status_code == 201
    refused = await backend_client.http.post("/api/password-reset", json={"email": email})
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "mail_unavailable")
    cookie = session(await sign_in(backend_client, email))
    resend = await backend_client.http.post("/api/me/verification", headers=cookie)
    assert (resend.status_code, resend.json()["error"]["code"]) == (503, "mail_unavailable")


async def signed_in_owner(client: AppClient, inbox: Inbox, email: str) -> dict[str, str]:
    """Sign ``email`` up, verify it through its mail, sign in; the session's headers."""
    await sign_up(client, email)
    token = link_token((await mails_to(inbox, email))[0], "/verify")
    assert (
        await client.http.post("/api/accounts/verify", json={"token": token})
    ).status_code == 200
    return session(await sign_in(client, email))


async def test_the_owner_gets_one_digest_per_window_of_photos_waiting(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("owner")
    owner = await signed_in_owner(mail_client, inbox, email)
    created = await mail_client.http.post(
        "/api/rooms", json={"title": "Garden party", "moderation": "approve"}, headers=owner
    )
    assert created.status_code == 201, created.text
    room = created.json()
    guest = await join(mail_client, room, "Ola")
    for variant in range(3):
        sent = await upload(mail_client, room["token"], photo(variant), headers=guest)
        assert sent.status_code == 201 and sent.json()["status"] == "pending"
    _, digest = await mails_to(inbox, email, 2)
    assert digest["Subject"] == "ImageShark: 1 photo waits for approval in Garden party"
    assert f"{BASE}/r/{room['token']}/host" in body_text(digest)
    # The other two photos came within the window: nothing more was queued for the owner.
    assert (await queued_recipients(mail_client.settings)).count(email) == 2

    # The window passes (the throttle's last send moved back by its length).
    database = Database(mail_client.settings)
    try:
        async with database.transaction() as connection:
            room_id = (
                await connection.execute(select(rooms.c.id).where(rooms.c.token == room["token"]))
            ).scalar_one()
            await connection.execute(
                update(mail_throttle)
                .where(mail_throttle.c.key == f"pending:{room_id}")
                .values(last_sent_at=utc_now() - timedelta(minutes=15, seconds=1))
            )
    finally:
        await database.close()
    assert (await upload(mail_client, room["token"], photo(3), headers=guest)).status_code == 201
    later = (await mails_to(inbox, email, 3))[2]
    assert later["Subject"] == "ImageShark: 4 photos wait for approval in Garden party"


async def test_an_unverified_owner_gets_no_digest(mail_client: AppClient, inbox: Inbox) -> None:
    email = address("unverified")
    await sign_up(mail_client, email)
    await mails_to(inbox, email)
    owner = session(await sign_in(mail_client, email))
    room = (
        await mail_client.http.post(
            "/api/rooms", json={"title": "Quiet", "moderation": "approve"}, headers=owner
        )
    ).json()
    guest = await join(mail_client, room, "Pia")
    assert (await upload(mail_client, room["token"], photo(0), headers=guest)).status_code == 201
    assert (await queued_recipients(mail_client.settings)).count(email) == 1  # the verification


async def test_an_owner_who_turns_the_digest_off_gets_none(
    mail_client: AppClient, inbox: Inbox
) -> None:
    email = address("optout")
    owner = await signed_in_owner(mail_client, inbox, email)
    changed = await mail_client.http.patch("/api/me", json={"notify_pending": False}, headers=owner)
    assert changed.status_code == 200 and changed.json()["notify_pending"] is False
    assert (await mail_client.http.get("/api/me", headers=owner)).json()["notify_pending"] is False
    room = (
        await mail_client.http.post(
            "/api/rooms", json={"title": "Quiet", "moderation": "approve"}, headers=owner
        )
    ).json()
    guest = await join(mail_client, room, "Pia")
    assert (await upload(mail_client, room["token"], photo(0), headers=guest)).status_code == 201
    assert (await queued_recipients(mail_client.settings)).count(email) == 1  # the verification


@pytest.mark.parametrize(
    ("path", "script"), [("/verify", "verify-email.js"), ("/reset", "password-reset.js")]
)
async def test_the_link_pages_load_their_script_and_never_echo_the_token(
    backend_client: AppClient, path: str, script: str
) -> None:
    page = await backend_client.http.get(f"{path}?token=<b>echo-me</b>")
    assert page.status_code == 200
    assert script in page.text and "echo-me" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
