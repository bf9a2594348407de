"""Host accounts over HTTP: sign-up, sign-in, sessions (list, sign-out, everywhere), the
throttle, no user enumeration, disabled accounts; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from prometheus_client import CollectorRegistry

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.web.accounts_helpers import (
    PASSWORD,
    SESSION_COOKIE,
    repositories,
    session,
    sign_in,
    sign_up,
    signed_up_session,
)
from web.accounts.devices import UNKNOWN_DEVICE, device_summary
from web.accounts.passwords import Passwords, new_hasher, stand_in_hash
from web.accounts.repository import AccountRepository
from web.accounts.service import TOUCH_SECONDS, AccountService
from web.database import Database
from web.mail.mailer import Mailer
from web.metrics import MailMetrics
from web.migrate import upgrade
from web.rate_limits import RateLimiter
from web.security import digest
from web.settings import Settings

FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def account_keys(body: dict[str, Any]) -> set[str]:
    return set(body)


async def test_sign_up_and_sign_in_open_a_session(backend_client: AppClient) -> None:
    created = await sign_up(backend_client, "  Ann.Lee@Example.ORG ", name=" Ann  Lee ")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "Ann.Lee@example.org" and body["name"] == "Ann Lee"
    assert body["email_verified"] is False and body["is_admin"] is False
    assert "set-cookie" not in created.headers  # signing up does not sign in
    signed = await sign_in(backend_client, "Ann.Lee@EXAMPLE.org")
    assert signed.status_code == 200, signed.text
    assert signed.json() == body
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http, no https base URL
    me = await backend_client.http.get("/api/me", headers=session(signed))
    assert me.status_code == 200 and me.json() == body
    assert me.headers["cache-control"] == "private, no-store"
    # The local part keeps its case: another spelling of it is another address.
    assert (await sign_in(backend_client, "ann.lee@example.org")).status_code == 401


async def test_the_cookie_is_secure_behind_an_https_base_url(
    make_settings: SettingsFactory,
) -> None:
    async for client in _app_client(make_settings(public_base_url="https://photos.example.org")):
        assert (await sign_up(client, "bo@example.org")).status_code == 201
        signed = await sign_in(client, "bo@example.org")
        attributes = {part.strip().lower() for part in signed.headers["set-cookie"].split(";")}
        assert "secure" in attributes


async def test_signing_up_a_taken_address_answers_alike_and_changes_nothing(
    backend_client: AppClient,
) -> None:
    first = await sign_up(backend_client, "cy@example.org", name="Cy")
    again = await sign_up(backend_client, "cy@example.org", "another password", name="Mallory")
    assert first.status_code == again.status_code == 201
    assert account_keys(first.json()) == account_keys(again.json())
    assert again.json()["email"] == "cy@example.org" and again.json()["name"] == "Mallory"
    assert (await sign_in(backend_client, "cy@example.org", "another password")).status_code == 401
    signed = await sign_in(backend_client, "cy@example.org")
    assert signed.status_code == 200 and signed.json()["name"] == "Cy"


async def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(
    backend_client: AppClient,
) -> None:
    assert (await sign_up(backend_client, "di@example.org")).status_code == 201
    wrong = await sign_in(backend_client, "di@example.org", "not the password")
    unknown = await sign_in(backend_client, "nobody@example.org")
    malformed = await sign_in(backend_client, "not an address")
    assert wrong.status_code == unknown.status_code == malformed.status_code == 401
    assert wrong.json() == unknown.json() == malformed.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


async def test_sign_up_checks_its_fields(client: AppClient) -> None:
    cases = [
        ({"email": "no-at-sign", "password": PASSWORD}, "invalid_email"),
        ({"email": "a b@example.org", "password": PASSWORD}, "invalid_email"),
        ({"email": "ed@example.org", "password": "short"}, "invalid_password"),
        ({"email": "ed@example.org", "password": PASSWORD, "name": "\x00"}, "invalid_name"),
        ({"email": "ed@example.org", "password": PASSWORD, "admin": True}, "unknown_field"),
        ({"password": PASSWORD}, "invalid_email"),
    ]
    for body, code in cases:
        response = await client.http.post("/api/accounts", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == code, body
    assert (await sign_in(client, "ed@example.org")).status_code == 401  # none was created


async def test_sign_up_is_refused_unless_open(make_settings: SettingsFactory) -> None:
    for mode in ("closed", "invite"):
        async for client in _app_client(make_settings(signup=mode)):
            refused = await sign_up(client, "fay@example.org")
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "signup_closed"
            assert (await sign_in(client, "fay@example.org")).status_code == 401


async def test_sign_in_is_throttled_per_account(make_settings: SettingsFactory) -> None:
    settings = make_settings(sign_in_account_rate_limit="3/minute")
    async for client in _app_client(settings):
        assert (await sign_up(client, "gus@example.org")).status_code == 201
        assert (await sign_up(client, "hal@example.org")).status_code == 201
        for _ in range(3):
            assert (await sign_in(client, "gus@example.org", "guess")).status_code == 401
        throttled = await sign_in(client, "gus@example.org")  # even the right password
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "rate_limited"
        assert int(throttled.headers["retry-after"]) >= 1
        # Spelled otherwise, the same mailbox shares the count.
        assert (await sign_in(client, "GUS@example.org")).status_code == 429
        # Another account from the same address is not held back.
        assert (await sign_in(client, "hal@example.org")).status_code == 200


async def test_sign_in_is_throttled_per_address(make_settings: SettingsFactory) -> None:
    settings = make_settings(sign_in_address_rate_limit="2/minute")
    async for client in _app_client(settings):
        assert (await sign_up(client, "ida@example.org")).status_code == 201
        assert (await sign_in(client, "one@example.org")).status_code == 401
        assert (await sign_in(client, "two@example.org")).status_code == 401
        assert (await sign_in(client, "ida@example.org")).status_code == 429


async def test_sign_out_ends_the_session_on_every_replica(backend_client: AppClient) -> None:
    headers = await signed_up_session(backend_client, "jo@example.org")
    # A second app on the same database: another replica.
    async for other in _app_client(backend_client.settings):
        assert (await other.http.get("/api/me", headers=headers)).status_code == 200
        out = await backend_client.http.delete("/api/session", headers=headers)
        assert out.status_code == 204
        cleared = out.headers["set-cookie"].lower()
        assert cleared.startswith(f'{SESSION_COOKIE}=""') and "max-age=0" in cleared
        for client in (backend_client, other):
            gone = await client.http.get("/api/me", headers=headers)
            assert gone.status_code == 401
            assert gone.json()["error"]["code"] == "not_signed_in"
    # Signing out without a session is no error.
    assert (await backend_client.http.delete("/api/session")).status_code == 204


async def test_sessions_are_listed_and_ended_one_by_one_or_everywhere(
    backend_client: AppClient,
) -> None:
    phone = await signed_up_session(
        backend_client, "kim@example.org", headers={"User-Agent": FIREFOX_ANDROID}
    )
    laptop = session(
        await sign_in(backend_client, "kim@example.org", headers={"User-Agent": SAFARI_IPHONE})
    )
    listed = await backend_client.http.get("/api/me/sessions", headers=laptop)
    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert [(entry["device"], entry["current"]) for entry in sessions] == [
        ("Safari on iPhone", True),
        ("Firefox on Android", False),
    ]
    phone_id = sessions[1]["id"]
    # Another account cannot end it; this one can.
    stranger = await signed_up_session(backend_client, "lou@example.org")
    foreign = await backend_client.http.delete(f"/api/me/sessions/{phone_id}", headers=stranger)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "session_not_found"
    assert (await backend_client.http.get("/api/me", headers=phone)).status_code == 200
    ended = await backend_client.http.delete(f"/api/me/sessions/{phone_id}", headers=laptop)
    assert ended.status_code == 204
    assert (await backend_client.http.get("/api/me", headers=phone)).status_code == 401
    remaining = (await backend_client.http.get("/api/me/sessions", headers=laptop)).json()
    assert [entry["device"] for entry in remaining["sessions"]] == ["Safari on iPhone"]
    # Sign out everywhere: every session of the account, this one too, and no other account's.
    tablet = session(await sign_in(backend_client, "kim@example.org"))
    everywhere = await backend_client.http.delete("/api/me/sessions", headers=laptop)
    assert everywhere.status_code == 204
    for headers in (laptop, tablet):
        assert (await backend_client.http.get("/api/me", headers=headers)).status_code == 401
    assert (await backend_client.http.get("/api/me", headers=stranger)).status_code == 200


async def test_a_forged_or_missing_cookie_is_not_signed_in(client: AppClient) -> None:
    for headers in ({}, {"Cookie": f"{SESSION_COOKIE}=forged-{'x' * 40}"}):
        for path in ("/api/me", "/api/me/rooms", "/api/me/sessions"):
            response = await client.http.get(path, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "not_signed_in"
    forged = {"Cookie": f"{SESSION_COOKIE}=forged"}
    assert (await client.http.delete("/api/me/sessions", headers=forged)).status_code == 401


async def test_a_disabled_account_is_signed_out_and_cannot_sign_in(
    backend_client: AppClient,
) -> None:
    headers = await signed_up_session(backend_client, "max@example.org")
    room = await backend_client.http.post("/api/rooms", json={"title": "Mine"}, headers=headers)
    assert room.status_code == 201
    async with repositories(backend_client.settings) as (accounts, _):
        account = await accounts.by_email("max@example.org")
        assert account is not None
        await accounts.set_disabled(account.id, True)
    assert (await backend_client.http.get("/api/me", headers=headers)).status_code == 401
    patch = await backend_client.http.patch(
        f"/api/rooms/{room.json()['token']}", json={"wall_blanked": True}, headers=headers
    )
    assert patch.status_code == 401
    right = await sign_in(backend_client, "max@example.org")
    assert right.status_code == 403 and right.json()["error"]["code"] == "account_disabled"
    assert "set-cookie" not in right.headers
    wrong = await sign_in(backend_client, "max@example.org", "not the password")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"


def test_device_summaries_name_browser_and_system() -> None:
    chrome_windows = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
    edge = chrome_windows + " Edg/131.0.0.0"
    assert device_summary(FIREFOX_ANDROID) == "Firefox on Android"
    assert device_summary(SAFARI_IPHONE) == "Safari on iPhone"
    assert device_summary(chrome_windows) == "Chrome on Windows"
    assert device_summary(edge) == "Edge on Windows"
    assert device_summary("curl/8.5.0") == "curl"
    assert device_summary("python-httpx/0.28.1") == "python-httpx"
    assert device_summary(None) == device_summary("  ") == UNKNOWN_DEVICE
    assert device_summary("Mozilla/5.0 (compatible)") == UNKNOWN_DEVICE


class Clock:
    """A settable UTC clock for the account service."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_sessions_slide_and_expire_and_record_their_use_once_a_minute(
    backend_settings: Settings,
) -> None:
    await asyncio.to_thread(upgrade, backend_settings)
    clock = Clock()
    database = Database(backend_settings)
    repository = AccountRepository(database)
    # Cheap parameters: this test is about sessions, not hashing.
    passwords = Passwords(1, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    limits = RateLimiter(
        {"sign_up": "100/minute", "sign_in_address": "100/minute", "sign_in_account": "100/minute"},
        None,
        "test",
    )
    no_mail = Mailer(None, "ImageShark <noreply@example.org>", MailMetrics(CollectorRegistry()))
    service = AccountService(repository, passwords, limits, backend_settings, no_mail, clock)
    try:
        await service.sign_up(
            {"email": "ned@example.org", "password": PASSWORD}, "192.0.2.1", "http://testserver"
        )
        signed_in, token = await service.sign_in(
            {"email": "ned@example.org", "password": PASSWORD}, "192.0.2.1", FIREFOX_ANDROID
        )
        started = clock.now
        assert signed_in.session.last_used_at == started
        clock.now = started + timedelta(seconds=TOUCH_SECONDS - 1)
        found = await service.resolve(token)
        assert found is not None and found.session.last_used_at == started  # not written
        unwritten = await repository.signed_in(digest(token))
        assert unwritten is not None and unwritten.session.last_used_at == started
        clock.now = started + timedelta(seconds=TOUCH_SECONDS)
        found = await service.resolve(token)
        assert found is not None and found.session.last_used_at == clock.now
        stored = await repository.signed_in(digest(token))
        assert stored is not None and stored.session.last_used_at == clock.now
        # Sliding: a use keeps it alive for another lifetime from then.
        last_use = clock.now
        clock.now = last_use + service.session_lifetime - timedelta(seconds=1)
        assert await service.resolve(token) is not None
        clock.now += service.session_lifetime
        assert await service.resolve(token) is None
        assert await service.sessions(signed_in.account) == []
        assert await service.resolve(None) is None
        assert await service.resolve("x" * 200) is None
    finally:
        await database.close()


def test_the_stand_in_hash_is_verified_in_full_and_matches_no_password() -> None:
    hasher = new_hasher()
    stand_in = stand_in_hash(hasher)
    assert stand_in.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not hasher.check_needs_rehash(stand_in)  # the stored hashes' parameters exactly
    # A mismatch (not a malformed hash): the tag was computed and compared, as for a real one.
    with pytest.raises(VerifyMismatchError):
        hasher.verify(stand_in, PASSWORD)
    assert stand_in_hash(hasher) != stand_in


async def test_signing_in_again_from_a_browser_replaces_its_session(
    backend_client: AppClient,
) -> None:
    first = await signed_up_session(backend_client, "ola@example.org")
    second = session(await sign_in(backend_client, "ola@example.org", headers=first))
    assert (await backend_client.http.get("/api/me", headers=first)).status_code == 401
    listed = (await backend_client.http.get("/api/me/sessions", headers=second)).json()
    assert [entry["current"] for entry in listed["sessions"]] == [True]
    # A failed sign-in leaves the browser's session as it was.
    failed = await sign_in(backend_client, "ola@example.org", "wrong password", headers=second)
    assert failed.status_code == 401
    assert (await backend_client.http.get("/api/me", headers=second)).status_code == 200
