"""Co-hosts: the owner's single-use invite links, accepting them, the host list, removing a
co-host and leaving; every refusal a 4xx in the API's error shape that changes nothing; on
SQLite and PostgreSQL (whose database the run's tests share: the addresses here are this
file's own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from tests.conftest import AppClient
from tests.web.accounts_helpers import signed_up_session
from tests.web.test_host_controls import host, join, photo
from tests.web.test_images import upload
from web.database import Database
from web.schema import cohost_invites


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def owned_room(client: AppClient, owner: dict[str, str], **settings: Any) -> dict[str, Any]:
    created = await client.http.post(
        "/api/rooms", json={"title": "Gala", **settings}, headers=owner
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def invite(
    client: AppClient, room: dict[str, Any], headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.http.post(
        f"/api/rooms/{room['token']}/cohost-invites", json=body, headers=headers
    )


def invite_token(issued: httpx.Response) -> str:
    url = str(issued.json()["url"])
    assert url.startswith("http://testserver/invites/")
    return url.rsplit("/", 1)[1]


async def accept(client: AppClient, token: str, headers: dict[str, str]) -> httpx.Response:
    return await client.http.post(f"/api/invites/{token}/accept", headers=headers)


async def hosts(client: AppClient, room: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await client.http.get(f"/api/rooms/{room['token']}/cohosts", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_invited_cohost_moderates_but_does_not_own_the_room(
    backend_client: AppClient,
) -> None:
    client = backend_client
    owner = await signed_up_session(client, "ann@cohosts.example")
    room = await owned_room(client, owner, moderation="approve")
    issued = await invite(client, room, owner, email=" bo@Cohosts.EXAMPLE ")
    assert issued.status_code == 201, issued.text
    expires_at = datetime.fromisoformat(issued.json()["expires_at"])
    assert timedelta(days=6.9) < expires_at - datetime.now(UTC) <= timedelta(days=7)
    [pending] = (await hosts(client, room, owner))["invites"]
    assert pending["invite_id"] == issued.json()["invite_id"]
    assert pending["email"] == "bo@cohosts.example"

    cohost = await signed_up_session(client, "bo@cohosts.example")
    accepted = await accept(client, invite_token(issued), cohost)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["token"], accepted.json()["role"]) == (room["token"], "cohost")
    listed = await hosts(client, room, owner)
    assert [(h["role"], h["email"]) for h in listed["hosts"]] == [
        ("owner", "ann@cohosts.example"),
        ("cohost", "bo@cohosts.example"),
    ]
    assert listed["invites"] == []
    # The co-host's view: the hosts without their addresses, no invites.
    seen = await hosts(client, room, cohost)
    assert [(h["role"], h["email"]) for h in seen["hosts"]] == [("owner", None), ("cohost", None)]
    assert seen["invites"] is None

    guest = await join(client, room, "Gus")
    pending_photo = await upload(client, room["token"], photo(1), headers=guest)
    assert pending_photo.json()["status"] == "pending"
    url = f"/api/rooms/{room['token']}"
    approved = await client.http.post(
        f"{url}/images/{pending_photo.json()['id']}/approve", headers=cohost
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    for refused in (
        await client.http.post(f"{url}/close", headers=cohost),
        await client.http.patch(url, json={"passcode": "tulip"}, headers=cohost),
        await invite(client, room, cohost),
        await client.http.delete(f"{url}/cohost-invites/{pending['invite_id']}", headers=cohost),
    ):
        assert refused.status_code == 403, refused.request.url
        assert error_code(refused) == "forbidden"
    view = (await client.http.get(f"{url}/host", headers=host(room))).json()
    assert view["closed"] is False and view["passcode"] is None


async def test_a_used_expired_revoked_or_unknown_invite_opens_nothing(
    backend_client: AppClient,
) -> None:
    client = backend_client
    owner = await signed_up_session(client, "cy@cohosts.example")
    room = await owned_room(client, owner)
    first, second = (
        await signed_up_session(client, "di@cohosts.example"),
        await signed_up_session(client, "em@cohosts.example"),
    )
    used = await invite(client, room, owner)
    assert (await accept(client, invite_token(used), first)).status_code == 200
    reused = await accept(client, invite_token(used), second)
    assert (reused.status_code, error_code(reused)) == (409, "invite_used")

    expired = await invite(client, room, owner)
    database = Database(client.settings)
    try:
        async with database.transaction() as connection:
            await connection.execute(
                update(cohost_invites)
                .where(cohost_invites.c.id == expired.json()["invite_id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await database.close()
    late = await accept(client, invite_token(expired), second)
    assert (late.status_code, error_code(late)) == (410, "invite_expired")

    revoked = await invite(client, room, owner)
    gone = await client.http.delete(
        f"/api/rooms/{room['token']}/cohost-invites/{revoked.json()['invite_id']}", headers=owner
    )
    assert gone.status_code == 204
    after = await accept(client, invite_token(revoked), second)
    assert (after.status_code, error_code(after)) == (404, "invite_not_found")
    unknown = await accept(client, "no-such-invite-token", second)
    assert (unknown.status_code, error_code(unknown)) == (404, "invite_not_found")
    again = await client.http.delete(
        f"/api/rooms/{room['token']}/cohost-invites/{revoked.json()['invite_id']}", headers=owner
    )
    assert (again.status_code, error_code(again)) == (404, "invite_not_found")

    own = await invite(client, room, owner)
    self_accept = await accept(client, invite_token(own), owner)
    assert (self_accept.status_code, error_code(self_accept)) == (409, "already_host")
    anonymous = await accept(client, invite_token(own), {})
    assert (anonymous.status_code, error_code(anonymous)) == (401, "not_signed_in")
    # Nothing changed: the owner and the one co-host, and the owner's invite still open.
    listed = await hosts(client, room, owner)
    assert [h["email"] for h in listed["hosts"]] == ["cy@cohosts.example", "di@cohosts.example"]
    assert [i["invite_id"] for i in listed["invites"]] == [own.json()["invite_id"]]


async def test_only_the_owner_invites_and_not_in_another_accounts_room(
    backend_client: AppClient,
) -> None:
    client = backend_client
    owner = await signed_up_session(client, "fi@cohosts.example")
    room = await owned_room(client, owner)
    other_owner = await signed_up_session(client, "gu@cohosts.example")
    other_room = await owned_room(client, other_owner)
    cohost = await signed_up_session(client, "ho@cohosts.example")
    issued = await invite(client, room, owner)
    assert (await accept(client, invite_token(issued), cohost)).status_code == 200
    stranger = await signed_up_session(client, "iv@cohosts.example")
    for refused in (
        await invite(client, room, stranger),
        await invite(client, other_room, cohost),
        await client.http.get(f"/api/rooms/{other_room['token']}/cohosts", headers=cohost),
        await client.http.get(f"/api/rooms/{room['token']}/cohosts", headers=stranger),
        await client.http.delete(
            f"/api/rooms/{other_room['token']}/cohosts/{issued.json()['invite_id']}",
            headers=cohost,
        ),
        await client.http.post(
            f"/api/rooms/{other_room['token']}/images/1/approve", headers=cohost
        ),
    ):
        assert refused.status_code == 403, refused.request.url
        assert error_code(refused) == "forbidden"
    no_one = await invite(client, room, {})
    assert (no_one.status_code, error_code(no_one)) == (401, "host_key_required")
    # The host key is the owner's: it invites too.
    by_key = await invite(client, room, host(room))
    assert by_key.status_code == 201
    assert len((await hosts(client, other_room, other_owner))["hosts"]) == 1
    assert len((await hosts(client, room, owner))["invites"]) == 1


async def test_a_removed_cohost_is_refused_at_once_and_a_cohost_may_leave(
    backend_client: AppClient,
) -> None:
    client = backend_client
    owner = await signed_up_session(client, "jo@cohosts.example")
    room = await owned_room(client, owner, moderation="approve")
    url = f"/api/rooms/{room['token']}"
    removed = await signed_up_session(client, "ki@cohosts.example")
    leaving = await signed_up_session(client, "lu@cohosts.example")
    for session in (removed, leaving):
        issued = await invite(client, room, owner)
        assert (await accept(client, invite_token(issued), session)).status_code == 200
    listed = (await hosts(client, room, owner))["hosts"]
    removed_id, leaving_id = (h["account_id"] for h in listed[1:])
    owner_id = listed[0]["account_id"]
    assert (await client.http.get(f"{url}/pending", headers=removed)).status_code == 200

    # A co-host removes neither another co-host nor the owner.
    for refused in (
        await client.http.delete(f"{url}/cohosts/{removed_id}", headers=leaving),
        await client.http.delete(f"{url}/cohosts/{owner_id}", headers=leaving),
    ):
        assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    owner_gone = await client.http.delete(f"{url}/cohosts/{owner_id}", headers=owner)
    assert (owner_gone.status_code, error_code(owner_gone)) == (404, "cohost_not_found")

    assert (
        await client.http.delete(f"{url}/cohosts/{removed_id}", headers=owner)
    ).status_code == 204
    guest = await join(client, room, "Gus")
    pending_photo = await upload(client, room["token"], photo(2), headers=guest)
    for refused in (
        await client.http.get(f"{url}/pending", headers=removed),
        await client.http.post(
            f"{url}/images/{pending_photo.json()['id']}/approve", headers=removed
        ),
        await client.http.patch(url, json={"wall_blanked": True}, headers=removed),
        await client.http.get(f"{url}/cohosts", headers=removed),
    ):
        assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    twice = await client.http.delete(f"{url}/cohosts/{removed_id}", headers=owner)
    assert (twice.status_code, error_code(twice)) == (404, "cohost_not_found")

    left = await client.http.delete(f"{url}/cohosts/{leaving_id}", headers=leaving)
    assert left.status_code == 204
    after = await client.http.get(f"{url}/pending", headers=leaving)
    assert (after.status_code, error_code(after)) == (403, "forbidden")
    assert [h["account_id"] for h in (await hosts(client, room, owner))["hosts"]] == [owner_id]
    still_pending = await client.http.get(f"{url}/pending", headers=owner)
    assert [i["id"] for i in still_pending.json()["items"]] == [pending_photo.json()["id"]]
