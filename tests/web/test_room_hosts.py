"""Rooms of host accounts: owned when created signed in or claimed with the host key, listed
with their counts, run with the owner's or a co-host's session within its role, refused to
other accounts and to other sites' pages; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import socketio

from tests.conftest import AppClient, LiveServer
from tests.web.accounts_helpers import repositories, signed_up_session
from tests.web.test_host_controls import host, join, new_room, photo
from tests.web.test_images import upload

CROSS_SITE = {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"}


async def my_rooms(client: AppClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.http.get("/api/me/rooms", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["rooms"])


async def host_view(client: AppClient, room: dict[str, Any]) -> dict[str, Any]:
    response = await client.http.get(f"/api/rooms/{room['token']}/host", headers=host(room))
    assert response.status_code == 200
    return dict(response.json())


async def test_a_room_created_signed_in_is_the_accounts_and_its_cookie_runs_it(
    backend_client: AppClient,
) -> None:
    owner = await signed_up_session(backend_client, "ann@example.org")
    created = await backend_client.http.post("/api/rooms", json={"title": "Wedding"}, headers=owner)
    assert created.status_code == 201
    room = created.json()
    token = room["token"]
    [listed] = await my_rooms(backend_client, owner)
    assert (listed["token"], listed["title"], listed["role"]) == (token, "Wedding", "owner")
    assert (listed["photo_count"], listed["pending_count"], listed["participant_count"]) == (
        0,
        0,
        0,
    )
    assert listed["closed"] is False and listed["code"] == room["code"]
    assert listed["last_activity_at"] == listed["created_at"]  # nothing happened yet
    # Cookie only, no host key: every host action.
    url = f"/api/rooms/{token}"
    assert (await backend_client.http.get(f"{url}/host", headers=owner)).status_code == 200
    changed = await backend_client.http.patch(
        url, json={"title": "Our wedding", "passcode": "tulip"}, headers=owner
    )
    assert changed.status_code == 200 and changed.json()["passcode"] == "tulip"
    assert (await backend_client.http.get(f"{url}/pending", headers=owner)).status_code == 200
    link = await backend_client.http.post(
        f"{url}/links", json={"path": f"{url}/archive.zip"}, headers=owner
    )
    assert link.status_code == 200
    guest = await join(backend_client, room, "Bo", passcode="tulip")
    assert (await upload(backend_client, token, photo(0), headers=guest)).status_code == 201
    closed = await backend_client.http.post(f"{url}/close", headers=owner)
    assert closed.status_code == 200 and closed.json()["closed"] is True
    [listed] = await my_rooms(backend_client, owner)
    assert listed["title"] == "Our wedding" and listed["closed"] is True
    assert (listed["photo_count"], listed["participant_count"]) == (1, 1)
    assert datetime.fromisoformat(listed["last_activity_at"]) > datetime.fromisoformat(
        listed["created_at"]
    )
    # A room created without a session belongs to nobody.
    await new_room(backend_client)
    assert len(await my_rooms(backend_client, owner)) == 1


async def test_claiming_a_room_needs_its_host_key_and_a_session(
    backend_client: AppClient,
) -> None:
    room = await new_room(backend_client)
    claim = f"/api/rooms/{room['token']}/claim"
    account = await signed_up_session(backend_client, "claimer@example.org")
    unsigned = await backend_client.http.post(claim, headers=host(room))
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "not_signed_in"
    keyless = await backend_client.http.post(claim, headers=account)
    assert keyless.status_code == 401
    assert keyless.json()["error"]["code"] == "host_key_required"
    wrong = await backend_client.http.post(
        claim, headers={**account, "Authorization": "Bearer not-the-key"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_host_key"
    assert await my_rooms(backend_client, account) == []
    claimed = await backend_client.http.post(claim, headers={**account, **host(room)})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["token"] == room["token"] and claimed.json()["role"] == "owner"
    assert [entry["token"] for entry in await my_rooms(backend_client, account)] == [room["token"]]
    again = await backend_client.http.post(claim, headers={**account, **host(room)})
    assert again.status_code == 200
    # Now the session alone closes it.
    url = f"/api/rooms/{room['token']}"
    assert (await backend_client.http.post(f"{url}/close", headers=account)).status_code == 200
    # Another account holding the key cannot take it over.
    other = await signed_up_session(backend_client, "di@example.org")
    taken = await backend_client.http.post(claim, headers={**other, **host(room)})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "already_claimed"
    assert await my_rooms(backend_client, other) == []


async def test_a_cohost_moderates_and_runs_the_wall_but_does_not_own_the_room(
    backend_client: AppClient,
) -> None:
    owner = await signed_up_session(backend_client, "ed@example.org")
    created = await backend_client.http.post(
        "/api/rooms", json={"title": "Gala", "moderation": "approve"}, headers=owner
    )
    room = created.json()
    token = room["token"]
    cohost = await signed_up_session(backend_client, "fay@example.org")
    async with repositories(backend_client.settings) as (accounts, rooms):
        account = await accounts.by_email("fay@example.org")
        stored = await rooms.by_token(token)
        assert account is not None and stored is not None
        await rooms.add_host(stored.id, account.id, "cohost", datetime.now(UTC))
    guest = await join(backend_client, room, "Gus")
    pending = await upload(backend_client, token, photo(1), headers=guest)
    assert pending.status_code == 201 and pending.json()["status"] == "pending"
    [listed] = await my_rooms(backend_client, cohost)
    assert (listed["role"], listed["pending_count"], listed["photo_count"]) == ("cohost", 1, 0)
    url = f"/api/rooms/{token}"
    queue = await backend_client.http.get(f"{url}/pending", headers=cohost)
    assert [item["id"] for item in queue.json()["items"]] == [pending.json()["id"]]
    approved = await backend_client.http.post(
        f"{url}/images/{pending.json()['id']}/approve", headers=cohost
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    wall = await backend_client.http.patch(
        url, json={"wall_blanked": True, "wall_mode": "grid"}, headers=cohost
    )
    assert wall.status_code == 200 and wall.json()["wall_blanked"] is True
    refused = [
        await backend_client.http.patch(url, json={"title": "Mine now"}, headers=cohost),
        await backend_client.http.patch(
            url, json={"wall_blanked": False, "passcode": "secret"}, headers=cohost
        ),
        await backend_client.http.post(f"{url}/close", headers=cohost),
        await backend_client.http.get(f"{url}/archive.zip", headers=cohost),
        await backend_client.http.post(
            f"{url}/links", json={"path": f"{url}/archive.zip"}, headers=cohost
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.request.url
        assert response.json()["error"]["code"] == "forbidden"
    view = await host_view(backend_client, room)
    assert view["title"] == "Gala" and view["passcode"] is None and view["closed"] is False
    assert view["wall_blanked"] is True


async def test_another_account_is_no_host(backend_client: AppClient) -> None:
    owner = await signed_up_session(backend_client, "hal@example.org")
    room = (
        await backend_client.http.post("/api/rooms", json={"title": "Party"}, headers=owner)
    ).json()
    stranger = await signed_up_session(backend_client, "ida@example.org")
    url = f"/api/rooms/{room['token']}"
    for response in (
        await backend_client.http.get(f"{url}/host", headers=stranger),
        await backend_client.http.get(f"{url}/pending", headers=stranger),
        await backend_client.http.patch(url, json={"wall_blanked": True}, headers=stranger),
        await backend_client.http.post(f"{url}/close", headers=stranger),
    ):
        assert response.status_code == 403, response.request.url
        assert response.json()["error"]["code"] == "forbidden"
    forged = {"Cookie": "imageshark_session=forged-session-token"}
    anonymous = await backend_client.http.post(f"{url}/close", headers=forged)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "host_key_required"
    view = await host_view(backend_client, room)
    assert view["closed"] is False and view["wall_blanked"] is False
    assert await my_rooms(backend_client, stranger) == []


async def test_other_sites_pages_cannot_use_a_valid_session(backend_client: AppClient) -> None:
    owner = await signed_up_session(backend_client, "jo@example.org")
    room = (
        await backend_client.http.post("/api/rooms", json={"title": "Reunion"}, headers=owner)
    ).json()
    url = f"/api/rooms/{room['token']}"
    attempts = [
        await backend_client.http.post(f"{url}/close", headers={**owner, **CROSS_SITE}),
        await backend_client.http.patch(
            url, json={"title": "Hijacked"}, headers={**owner, **CROSS_SITE}
        ),
        await backend_client.http.post(
            "/api/rooms", json={"title": "Planted"}, headers={**owner, **CROSS_SITE}
        ),
        await backend_client.http.delete("/api/me/sessions", headers={**owner, **CROSS_SITE}),
        await backend_client.http.delete("/api/session", headers={**owner, **CROSS_SITE}),
    ]
    for response in attempts:
        assert response.status_code == 403, response.request.url
        assert response.json()["error"]["code"] == "cross_origin_refused"
    view = await host_view(backend_client, room)
    assert view["closed"] is False and view["title"] == "Reunion"
    assert [entry["title"] for entry in await my_rooms(backend_client, owner)] == ["Reunion"]
    # The same requests from the service's own pages go through.
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    closed = await backend_client.http.post(f"{url}/close", headers={**owner, **own})
    assert closed.status_code == 200 and closed.json()["closed"] is True


async def live_refusal(base_url: str, token: str, cookie: str | None) -> dict[str, Any] | None:
    """Connect to the live side for room ``token`` with ``cookie``: None when admitted, else
    the refusal's ``{"message", "data"}``."""
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    try:
        await client.connect(
            base_url,
            auth={"token": token, "name": "Wall"},
            headers={"Cookie": cookie} if cookie else {},
            transports=["websocket"],
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        assert isinstance(reasons[0], dict)
        return reasons[0]
    await client.disconnect()
    return None


async def test_the_live_side_admits_a_passcode_rooms_hosts_by_their_session(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        app = AppClient(http=http, settings=live_server.settings, app=None)
        owner = await signed_up_session(app, "kai@example.org")
        stranger = await signed_up_session(app, "lea@example.org")
        created = await http.post(
            "/api/rooms", json={"title": "Private", "passcode": "orchid"}, headers=owner
        )
        token = created.json()["token"]
    base_url = live_server.base_url
    assert await live_refusal(base_url, token, owner["Cookie"]) is None
    for cookie in (stranger["Cookie"], "imageshark_session=forged", None):
        refusal = await live_refusal(base_url, token, cookie)
        assert refusal is not None and refusal["data"]["code"] == "passcode_required"
