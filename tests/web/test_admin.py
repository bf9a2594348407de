"""Instance administration over HTTP: the admin-only routes, the room list's sizes and owners,
closing and deleting rooms (their files too), disabling accounts, sign-up invites; on SQLite
and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.leftovers import media_dirs
from tests.photos import make_image_bytes
from tests.web.accounts_helpers import (
    PASSWORD,
    repositories,
    session,
    sign_in,
    sign_up,
    signed_up_session,
)
from tests.web.test_images import upload
from web.accounts.passwords import Passwords
from web.admin.repository import AdminRepository
from web.admin.service import create_admin
from web.rooms.service import utc_now
from web.settings import Settings

ADMIN = "admin@example.org"


async def admin_session(client: AppClient, email: str = ADMIN) -> dict[str, str]:
    """Create ``email`` as an admin (as ``imageshark create-admin`` does) and sign it in;
    the headers carrying its session cookie."""
    async with repositories(client.settings) as (accounts, _):
        await create_admin(
            accounts, AdminRepository(accounts.database), Passwords(1), email, PASSWORD, utc_now()
        )
    response = await sign_in(client, email)
    assert response.status_code == 200, response.text
    assert response.json()["is_admin"] is True
    return session(response)


async def owned_room(client: AppClient, owner: dict[str, str], title: str) -> dict:
    response = await client.http.post("/api/rooms", json={"title": title}, headers=owner)
    assert response.status_code == 201, response.text
    return response.json()


async def listed_rooms(client: AppClient, admin: dict[str, str]) -> dict[str, dict]:
    response = await client.http.get("/api/admin/rooms", headers=admin)
    assert response.status_code == 200, response.text
    return {room["token"]: room for room in response.json()["rooms"]}


async def test_admin_routes_refuse_other_accounts_and_strangers(
    backend_client: AppClient,
) -> None:
    host = await signed_up_session(backend_client, "host@example.org")
    room = await owned_room(backend_client, host, "Mine")
    calls = [
        ("GET", "/api/admin/rooms"),
        ("POST", f"/api/admin/rooms/{room['token']}/close"),
        ("DELETE", f"/api/admin/rooms/{room['token']}"),
        ("GET", "/api/admin/accounts"),
        ("POST", "/api/admin/accounts/1/disable"),
        ("POST", "/api/admin/accounts/1/enable"),
        ("POST", "/api/admin/signup-invites"),
    ]
    for method, path in calls:
        refused = await backend_client.http.request(method, path, headers=host)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
        anonymous = await backend_client.http.request(method, path)
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.json()["error"]["code"] == "not_signed_in"
    # Nothing happened to the room.
    assert (await backend_client.http.get(f"/api/rooms/{room['token']}")).json()["closed"] is False


async def test_room_list_shows_size_owner_and_state(backend_client: AppClient) -> None:
    admin = await admin_session(backend_client)
    host = await signed_up_session(backend_client, "host@example.org")
    room = await owned_room(backend_client, host, "Busy night")
    unowned = (await backend_client.http.post("/api/rooms", json={"title": "Anonymous"})).json()
    photo = make_image_bytes("jpeg", size=(640, 480))
    stored = await upload(backend_client, room["token"], photo)
    assert stored.status_code == 201, stored.text
    listed = await listed_rooms(backend_client, admin)
    entry = listed[room["token"]]
    assert entry["owner_email"] == "host@example.org"
    assert entry["title"] == "Busy night" and entry["state"] == "open"
    assert entry["image_count"] == 1
    assert entry["stored_bytes"] == len(photo)  # the original's size, as the byte quota counts
    assert entry["last_activity_at"] >= entry["created_at"]
    assert listed[unowned["token"]]["owner_email"] is None
    assert listed[unowned["token"]]["stored_bytes"] == 0
    # Paging: one room a page, newest first, then the other, then the end.
    first = (await backend_client.http.get("/api/admin/rooms?limit=1", headers=admin)).json()
    assert [r["token"] for r in first["rooms"]] == [unowned["token"]]
    second = (
        await backend_client.http.get(
            f"/api/admin/rooms?limit=1&after={first['next_after']}", headers=admin
        )
    ).json()
    assert [r["token"] for r in second["rooms"]] == [room["token"]]
    bad = await backend_client.http.get("/api/admin/rooms?limit=0", headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_limit"


async def test_admin_closes_a_room_as_its_host_would(
    backend_client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await admin_session(backend_client)
    room = (await backend_client.http.post("/api/rooms", json={"title": "Spam"})).json()
    with caplog.at_level(logging.INFO, logger="web.admin.service"):
        closed = await backend_client.http.post(
            f"/api/admin/rooms/{room['token']}/close", headers=admin
        )
    assert closed.status_code == 204, closed.text
    assert (await backend_client.http.get(f"/api/rooms/{room['token']}")).json()["closed"] is True
    events = (await backend_client.http.get(f"/api/rooms/{room['token']}/events")).json()
    assert [event["kind"] for event in events["items"]][-1:] == ["room_closed"]
    assert (await listed_rooms(backend_client, admin))[room["token"]]["state"] == "closed"
    (record,) = [r for r in caplog.records if r.getMessage() == "admin action"]
    assert (record.action, record.target) == ("close_room", room["token"])  # type: ignore[attr-defined]
    assert isinstance(record.admin_id, int)  # type: ignore[attr-defined]
    missing = await backend_client.http.post(
        "/api/admin/rooms/AAAAAAAAAAAAAAAAAAAAAAAA/close", headers=admin
    )
    assert missing.status_code == 404


async def test_deleting_a_room_removes_its_rows_and_files(backend_client: AppClient) -> None:
    admin = await admin_session(backend_client)
    doomed = (await backend_client.http.post("/api/rooms", json={"title": "Abuse"})).json()
    kept = (await backend_client.http.post("/api/rooms", json={"title": "Wedding"})).json()
    for index, token in enumerate((doomed["token"], doomed["token"], kept["token"])):
        photo = make_image_bytes("jpeg", size=(640 + index * 16, 480))
        assert (await upload(backend_client, token, photo)).status_code == 201
    kept_images = (await backend_client.http.get(f"/api/rooms/{kept['token']}/images")).json()
    kept_key = kept_images["items"][0]["url"].split("/")[2]
    assert len(media_dirs(backend_client.settings.data_dir)) == 3
    deleted = await backend_client.http.delete(f"/api/admin/rooms/{doomed['token']}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    # Only the other room's image folder is left.
    assert [path.name for path in media_dirs(backend_client.settings.data_dir)] == [kept_key]
    assert (await backend_client.http.get(f"/api/rooms/{doomed['token']}")).status_code == 404
    listed = await listed_rooms(backend_client, admin)
    assert doomed["token"] not in listed and kept["token"] in listed
    again = await backend_client.http.delete(f"/api/admin/rooms/{doomed['token']}", headers=admin)
    assert again.status_code == 404


async def test_disabling_an_account_ends_its_sessions(backend_client: AppClient) -> None:
    admin = await admin_session(backend_client)
    host = await signed_up_session(backend_client, "host@example.org")
    second = session(await sign_in(backend_client, "host@example.org"))
    accounts = (await backend_client.http.get("/api/admin/accounts", headers=admin)).json()
    by_email = {entry["email"]: entry for entry in accounts["accounts"]}
    assert by_email[ADMIN]["is_admin"] is True
    host_id = by_email["host@example.org"]["id"]
    assert by_email["host@example.org"]["disabled"] is False
    disabled = await backend_client.http.post(
        f"/api/admin/accounts/{host_id}/disable", headers=admin
    )
    assert disabled.status_code == 204, disabled.text
    for cookie in (host, second):
        assert (await backend_client.http.get("/api/me", headers=cookie)).status_code == 401
    refused = await sign_in(backend_client, "host@example.org")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_disabled"
    enabled = await backend_client.http.post(f"/api/admin/accounts/{host_id}/enable", headers=admin)
    assert enabled.status_code == 204
    assert (await sign_in(backend_client, "host@example.org")).status_code == 200
    # The ended sessions stay ended: enabling signs nobody in.
    assert (await backend_client.http.get("/api/me", headers=host)).status_code == 401


async def test_an_admin_cannot_disable_themselves(backend_client: AppClient) -> None:
    admin = await admin_session(backend_client)
    accounts = (await backend_client.http.get("/api/admin/accounts", headers=admin)).json()
    (me,) = [entry for entry in accounts["accounts"] if entry["email"] == ADMIN]
    refused = await backend_client.http.post(
        f"/api/admin/accounts/{me['id']}/disable", headers=admin
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "cannot_disable_self"
    assert (await backend_client.http.get("/api/me", headers=admin)).status_code == 200
    unknown = await backend_client.http.post("/api/admin/accounts/999999/disable", headers=admin)
    assert unknown.status_code == 404


@pytest.fixture
async def invite_client(
    backend_settings: Settings, make_settings: SettingsFactory
) -> AsyncIterator[AppClient]:
    """The app with ``IMAGESHARK_SIGNUP=invite``, on each database in turn."""
    settings = backend_settings.model_copy(update={"signup": "invite"})
    async for app_client in _app_client(settings):
        yield app_client


async def test_invite_sign_up_flow(invite_client: AppClient) -> None:
    admin = await admin_session(invite_client)
    without = await sign_up(invite_client, "guest@example.org")
    assert without.status_code == 403 and without.json()["error"]["code"] == "signup_closed"
    forged = await sign_up(invite_client, "guest@example.org", invite="not-an-invite")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "signup_closed"
    issued = await invite_client.http.post("/api/admin/signup-invites", headers=admin)
    assert issued.status_code == 201, issued.text
    invite = issued.json()["invite"]
    created = await sign_up(invite_client, "guest@example.org", invite=invite)
    assert created.status_code == 201, created.text
    assert (await sign_in(invite_client, "guest@example.org")).status_code == 200
    used = await sign_up(invite_client, "other@example.org", invite=invite)
    assert used.status_code == 409 and used.json()["error"]["code"] == "invite_used"
    assert (await sign_in(invite_client, "other@example.org")).status_code == 401


async def test_invites_are_issued_only_in_invite_mode(client: AppClient) -> None:
    admin = await admin_session(client)
    refused = await client.http.post("/api/admin/signup-invites", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invites_not_enabled"


async def test_admin_page_for_strangers_hosts_and_admins(client: AppClient) -> None:
    signed_out = await client.http.get("/admin")
    assert signed_out.status_code == 200
    assert 'id="sign-in-form"' in signed_out.text and "rooms-table" not in signed_out.text
    host = await signed_up_session(client, "host@example.org")
    await owned_room(client, host, "Quiz night")
    refused = await client.http.get("/admin", headers=host)
    assert refused.status_code == 403
    assert "host@example.org, which is not an admin account" in refused.text
    assert "rooms-table" not in refused.text
    admin = await admin_session(client)
    page = await client.http.get("/admin", headers=admin)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "Quiz night" in page.text and "host@example.org" in page.text
