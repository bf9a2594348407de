"""Host controls over HTTP: room settings, closing, moderation, passcode, quotas, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.photos import make_image_bytes
from tests.web.test_images import upload


async def new_room(client: AppClient, **settings: Any) -> dict[str, Any]:
    response = await client.http.post("/api/rooms", json={"title": "Staff party", **settings})
    assert response.status_code == 201, response.text
    return dict(response.json())


def host(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


async def join(client: AppClient, room: dict[str, Any], name: str, **extra: Any) -> dict[str, str]:
    """Join as ``name``; return headers that identify the participant (its key)."""
    response = await client.http.post(
        f"/api/rooms/{room['token']}/participants", json={"name": name, **extra}
    )
    assert response.status_code == 201, response.text
    client.http.cookies.clear()  # identify by header, so participants do not mix
    return {"X-Participant-Key": response.json()["participant_key"]}


def photo(variant: int) -> bytes:
    """A small JPEG whose bytes differ per ``variant`` (the server de-duplicates by content)."""
    return make_image_bytes("jpeg", size=(320 + variant, 240))


async def test_new_room_has_documented_defaults_and_accepts_settings(
    backend_client: AppClient,
) -> None:
    plain = await new_room(backend_client)
    assert plain["uploads_open"] is True and plain["moderation"] == "off"
    assert plain["passcode_required"] is False and plain["passcode"] is None
    assert (plain["wall_mode"], plain["wall_qr_size"]) == ("spotlight", "medium")
    assert plain["wall_captions"] is True and plain["wall_blanked"] is False
    assert plain["wall_min_seconds"] == 5 and plain["wall_show_passcode"] is False
    assert (plain["wall_intermission_minutes"], plain["wall_intermission_seconds"]) == (0, 20)
    assert plain["max_uploads_per_guest"] == backend_client.settings.max_uploads_per_guest
    assert plain["max_images"] == backend_client.settings.max_images_per_room
    chosen = await new_room(
        backend_client, moderation="approve", passcode=" tulip ", wall_mode="grid"
    )
    assert chosen["moderation"] == "approve" and chosen["wall_mode"] == "grid"
    assert chosen["passcode"] == "tulip" and chosen["passcode_required"] is True
    public = (await backend_client.http.get(f"/api/rooms/{chosen['token']}")).json()
    assert "passcode" not in public and public["passcode_required"] is True


async def test_patch_changes_settings_for_the_host_only(backend_client: AppClient) -> None:
    room = await new_room(backend_client)
    url = f"/api/rooms/{room['token']}"
    assert (await backend_client.http.patch(url, json={"wall_blanked": True})).status_code == 401
    wrong = await backend_client.http.patch(
        url, json={"wall_blanked": True}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_host_key"
    expiry = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    changed = await backend_client.http.patch(
        url,
        json={
            "title": "Staff party 2026",
            "wall_blanked": True,
            "wall_mode": "grid",
            "wall_qr_size": "large",
            "wall_captions": False,
            "wall_min_seconds": 12,
            "wall_intermission_minutes": 15,
            "wall_intermission_seconds": 30,
            "uploads_open": False,
            "expires_at": expiry.isoformat(),
            "max_images": 5,
            "max_uploads_per_guest": None,
        },
        headers=host(room),
    )
    assert changed.status_code == 200, changed.text
    view = changed.json()
    assert view["title"] == "Staff party 2026" and view["wall_blanked"] is True
    assert view["wall_mode"] == "grid" and view["wall_qr_size"] == "large"
    assert view["wall_captions"] is False and view["uploads_open"] is False
    assert view["wall_min_seconds"] == 12
    assert (view["wall_intermission_minutes"], view["wall_intermission_seconds"]) == (15, 30)
    assert datetime.fromisoformat(view["expires_at"]) == expiry
    assert view["max_images"] == 5 and view["max_uploads_per_guest"] is None
    assert view["last_seq"] == room["last_seq"] + 1
    public = (await backend_client.http.get(url)).json()
    assert public["wall_blanked"] is True and public["title"] == "Staff party 2026"


async def test_wall_intermission_bounds_are_accepted_and_refusals_say_the_range(
    client: AppClient,
) -> None:
    room = await new_room(client)
    url = f"/api/rooms/{room['token']}"
    for minutes, seconds in ((60, 5), (1, 120), (0, 20)):
        body = {"wall_intermission_minutes": minutes, "wall_intermission_seconds": seconds}
        changed = await client.http.patch(url, json=body, headers=host(room))
        assert changed.status_code == 200, changed.text
        view = changed.json()
        assert (view["wall_intermission_minutes"], view["wall_intermission_seconds"]) == (
            minutes,
            seconds,
        )
    refused = await client.http.patch(
        url, json={"wall_intermission_minutes": 90}, headers=host(room)
    )
    assert "from 1 to 60" in refused.json()["error"]["message"]
    assert "0 for off" in refused.json()["error"]["message"]
    refused = await client.http.patch(
        url, json={"wall_intermission_seconds": 2}, headers=host(room)
    )
    assert "from 5 to 120" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"wall_mode": "carousel"}, "invalid_wall_mode"),
        ({"wall_qr_size": 3}, "invalid_wall_qr_size"),
        ({"uploads_open": "yes"}, "invalid_uploads_open"),
        ({"wall_min_seconds": 1}, "invalid_wall_min_seconds"),
        ({"wall_min_seconds": 61}, "invalid_wall_min_seconds"),
        ({"wall_min_seconds": 2.5}, "invalid_wall_min_seconds"),
        ({"wall_min_seconds": True}, "invalid_wall_min_seconds"),
        ({"wall_min_seconds": "5"}, "invalid_wall_min_seconds"),
        ({"wall_show_passcode": "yes"}, "invalid_wall_show_passcode"),
        ({"wall_intermission_minutes": -1}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_minutes": 61}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_minutes": 1.5}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_minutes": None}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_minutes": True}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_minutes": "10"}, "invalid_wall_intermission_minutes"),
        ({"wall_intermission_seconds": 4}, "invalid_wall_intermission_seconds"),
        ({"wall_intermission_seconds": 121}, "invalid_wall_intermission_seconds"),
        ({"wall_intermission_seconds": 0}, "invalid_wall_intermission_seconds"),
        ({"wall_intermission_seconds": 20.5}, "invalid_wall_intermission_seconds"),
        ({"wall_intermission_seconds": False}, "invalid_wall_intermission_seconds"),
        ({"moderation": "strict"}, "invalid_moderation"),
        ({"passcode": "abc"}, "invalid_passcode"),
        ({"max_images": 0}, "invalid_max_images"),
        ({"max_uploads_per_guest": True}, "invalid_max_uploads_per_guest"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "invalid_expires_at"),
        ({"expires_at": "2099-01-01T00:00:00"}, "invalid_expires_at"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "invalid_expires_at"),
        ({"title": ""}, "invalid_title"),
        ({"host_key": "mine"}, "unknown_field"),
    ],
)
async def test_bad_settings_are_422_and_change_nothing(
    client: AppClient, body: dict[str, Any], code: str
) -> None:
    room = await new_room(client)
    response = await client.http.patch(f"/api/rooms/{room['token']}", json=body, headers=host(room))
    assert response.status_code == 422 and response.json()["error"]["code"] == code
    after = (await client.http.get(f"/api/rooms/{room['token']}/host", headers=host(room))).json()
    assert after["last_seq"] == room["last_seq"] and after["title"] == room["title"]


async def test_closed_room_refuses_joins_uploads_and_changes(backend_client: AppClient) -> None:
    room = await new_room(backend_client)
    token = room["token"]
    guest = await join(backend_client, room, "Ida")
    assert (await upload(backend_client, token, photo(0), headers=guest)).status_code == 201
    closed = await backend_client.http.post(f"/api/rooms/{token}/close", headers=host(room))
    assert closed.status_code == 200 and closed.json()["closed"] is True
    again = await backend_client.http.post(f"/api/rooms/{token}/close", headers=host(room))
    assert again.status_code == 200 and again.json()["last_seq"] == closed.json()["last_seq"]
    refused = await upload(backend_client, token, photo(1), headers=guest)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "room_closed"
    joining = await backend_client.http.post(
        f"/api/rooms/{token}/participants", json={"name": "Late"}
    )
    assert joining.status_code == 409
    patch = await backend_client.http.patch(
        f"/api/rooms/{token}", json={"title": "x"}, headers=host(room)
    )
    assert patch.status_code == 409
    # Guests still see what was shared.
    listed = (await backend_client.http.get(f"/api/rooms/{token}/images")).json()
    assert len(listed["items"]) == 1


async def test_paused_uploads_are_409_for_guests_not_for_the_host(client: AppClient) -> None:
    room = await new_room(client, uploads_open=False)
    guest = await join(client, room, "Noor")
    refused = await upload(client, room["token"], photo(0), headers=guest)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "uploads_paused"
    assert (await upload(client, room["token"], photo(1), headers=host(room))).status_code == 201


async def test_moderation_queue_approve_and_reject(backend_client: AppClient) -> None:
    room = await new_room(backend_client, moderation="approve")
    token = room["token"]
    guest = await join(backend_client, room, "Ola")
    first = await upload(backend_client, token, photo(0), headers=guest, caption="one")
    second = await upload(backend_client, token, photo(1), headers=guest, caption="two")
    assert first.status_code == second.status_code == 201
    assert first.json()["status"] == "pending"
    # Not visible to the room, visible to the uploader and in the host's queue.
    assert (await backend_client.http.get(f"/api/rooms/{token}/images")).json()["items"] == []
    mine = await backend_client.http.get(f"/api/rooms/{token}/images?mine=true", headers=guest)
    assert [i["status"] for i in mine.json()["items"]] == ["pending", "pending"]
    queue_url = f"/api/rooms/{token}/pending"
    assert (await backend_client.http.get(queue_url)).status_code == 401
    queue = (await backend_client.http.get(queue_url, headers=host(room))).json()["items"]
    assert [i["caption"] for i in queue] == ["one", "two"]
    host_view = await backend_client.http.get(f"/api/rooms/{token}/host", headers=host(room))
    assert host_view.json()["pending_count"] == 2
    image_url = f"/api/rooms/{token}/images/{first.json()['id']}"
    assert (
        await backend_client.http.post(f"{image_url}/approve", headers=guest)
    ).status_code == 401
    approved = await backend_client.http.post(f"{image_url}/approve", headers=host(room))
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["seq"] > first.json()["seq"]
    twice = await backend_client.http.post(f"{image_url}/approve", headers=host(room))
    assert twice.json()["seq"] == approved.json()["seq"]
    not_pending = await backend_client.http.post(f"{image_url}/reject", headers=host(room))
    assert not_pending.status_code == 409
    second_url = f"/api/rooms/{token}/images/{second.json()['id']}"
    rejected = await backend_client.http.post(f"{second_url}/reject", headers=host(room))
    assert rejected.status_code == 204
    listed = (await backend_client.http.get(f"/api/rooms/{token}/images")).json()["items"]
    assert [i["caption"] for i in listed] == ["one"]
    assert (await backend_client.http.get(queue_url, headers=host(room))).json()["items"] == []
    # The log tells the story: queue grew twice, approval, queue shrank.
    events = (await backend_client.http.get(f"/api/rooms/{token}/events")).json()["items"]
    kinds = [(e["kind"], e["payload"].get("pending_count")) for e in events]
    assert kinds == [
        ("moderation_queue", 1),
        ("moderation_queue", 2),
        ("image_added", None),
        ("moderation_queue", 0),
    ]
    assert all("url" not in e["payload"] for e in events if e["kind"] == "moderation_queue")


async def test_host_uploads_skip_moderation(client: AppClient) -> None:
    room = await new_room(client, moderation="approve")
    response = await upload(client, room["token"], photo(0), headers=host(room))
    assert response.status_code == 201 and response.json()["status"] == "approved"


async def test_guest_quota_and_room_quota_are_429_and_retries_still_answer(
    backend_client: AppClient,
) -> None:
    room = await new_room(backend_client, max_uploads_per_guest=2, max_images=3)
    token = room["token"]
    ana = await join(backend_client, room, "Ana")
    bo = await join(backend_client, room, "Bo")
    for variant in (0, 1):
        assert (await upload(backend_client, token, photo(variant), headers=ana)).status_code == 201
    me = (await backend_client.http.get(f"/api/rooms/{token}/me", headers=ana)).json()
    assert (me["upload_count"], me["max_uploads"], me["uploads_left"]) == (2, 2, 0)
    over = await upload(backend_client, token, photo(2), headers=ana)
    assert over.status_code == 429 and over.json()["error"]["code"] == "guest_quota_reached"
    assert "retry-after" not in over.headers
    # A phone retrying an upload that was stored gets the stored image, not a refusal.
    retry = await upload(backend_client, token, photo(1), headers=ana)
    assert retry.status_code == 200
    assert (await upload(backend_client, token, photo(3), headers=bo)).status_code == 201
    full = await upload(backend_client, token, photo(4), headers=bo)
    assert full.status_code == 429 and full.json()["error"]["code"] == "room_quota_reached"
    listed = (await backend_client.http.get(f"/api/rooms/{token}/images")).json()["items"]
    assert len(listed) == 3
    # A deleted image frees its place in the room (the stored count goes down with it).
    removed = await backend_client.http.delete(
        f"/api/rooms/{token}/images/{listed[0]['id']}", headers=host(room)
    )
    assert removed.status_code == 204
    assert (await upload(backend_client, token, photo(4), headers=bo)).status_code == 201
    again = await upload(backend_client, token, photo(5), headers=bo)
    assert again.status_code == 429 and again.json()["error"]["code"] == "room_quota_reached"


async def test_upload_rate_limit_is_429_with_retry_after(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(upload_rate_limit="2/minute")):
        room = await new_room(client)
        guest = await join(client, room, "Quick")
        for variant in (0, 1):
            assert (
                await upload(client, room["token"], photo(variant), headers=guest)
            ).status_code == 201
        limited = await upload(client, room["token"], photo(2), headers=guest)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        other = await join(client, room, "Other")
        assert (await upload(client, room["token"], photo(3), headers=other)).status_code == 201


async def test_passcode_guards_joining_and_reading(backend_client: AppClient) -> None:
    room = await new_room(backend_client, passcode="orchid")
    token = room["token"]
    url = f"/api/rooms/{token}/participants"
    missing = await backend_client.http.post(url, json={"name": "Eve"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "passcode_required"
    wrong = await backend_client.http.post(url, json={"name": "Eve", "passcode": "tulip"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_passcode"
    backend_client.http.cookies.clear()
    for path in ("images", "events"):
        refused = await backend_client.http.get(f"/api/rooms/{token}/{path}")
        assert refused.status_code == 401, path
    anonymous = await upload(backend_client, token, photo(0))
    assert anonymous.status_code == 401
    assert (await backend_client.http.get(f"/api/rooms/{token}")).status_code == 200
    guest = await join(backend_client, room, "Eve", passcode=" orchid ")
    assert (await upload(backend_client, token, photo(0), headers=guest)).status_code == 201
    listed = await backend_client.http.get(f"/api/rooms/{token}/images", headers=guest)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1
    as_host = await backend_client.http.get(f"/api/rooms/{token}/images", headers=host(room))
    assert as_host.status_code == 200
    # Removing the passcode opens the room again.
    await backend_client.http.patch(
        f"/api/rooms/{token}", json={"passcode": None}, headers=host(room)
    )
    assert (await backend_client.http.get(f"/api/rooms/{token}/images")).status_code == 200


async def test_passcode_reaches_only_admitted_viewers_when_the_wall_may_show_it(
    backend_client: AppClient,
) -> None:
    http = backend_client.http
    room = await new_room(backend_client, passcode="orchid")
    url = f"/api/rooms/{room['token']}"
    assert room["wall_show_passcode"] is False
    guest = await join(backend_client, room, "Eve", passcode="orchid")
    other = await new_room(backend_client, passcode="tulip")
    outsider = await join(backend_client, other, "Max", passcode="tulip")
    wrong_host = {"Authorization": "Bearer not-the-key"}

    async def passcode_seen(headers: dict[str, str]) -> str | None:
        response = await http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        view = response.json()
        if "passcode" in view:
            assert "no-store" in response.headers["cache-control"]
        passcode: str | None = view.get("passcode")
        return passcode

    change_seqs: list[int] = []

    async def change(**fields: Any) -> dict[str, Any]:
        response = await http.patch(url, json=fields, headers=host(room))
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        change_seqs.append(view["last_seq"])
        return view

    # Off (the default): only the host's own view (GET .../host) carries it.
    for headers in ({}, host(room), guest):
        assert await passcode_seen(headers) is None
    assert (await change(wall_show_passcode=True))["wall_show_passcode"] is True
    public = (await http.get(url)).json()
    assert public["wall_show_passcode"] is True and "passcode" not in public
    assert await passcode_seen(host(room)) == room["passcode"]
    assert await passcode_seen(guest) == room["passcode"]
    for stranger in ({}, outsider, wrong_host):
        assert await passcode_seen(stranger) is None
    # A participant known by its cookie alone, as the wall after its join.
    joined = await http.post(f"{url}/participants", json={"name": "Wall", "passcode": "orchid"})
    assert joined.status_code == 201 and http.cookies
    assert await passcode_seen({}) == room["passcode"]
    http.cookies.clear()

    changed = await change(passcode="lily-pad")
    assert await passcode_seen(guest) == changed["passcode"] == "lily-pad"
    assert await passcode_seen({}) is None
    await change(wall_show_passcode=False)
    assert await passcode_seen(guest) is None and await passcode_seen(host(room)) is None
    await change(wall_show_passcode=True, passcode=None)
    assert await passcode_seen(guest) is None and await passcode_seen(host(room)) is None

    # Every room_updated in the log (what replays and broadcasts send) lacks the passcodes.
    events = await http.get(f"{url}/events", headers=host(room))
    items = [item for item in events.json()["items"] if item["kind"] == "room_updated"]
    assert [item["seq"] for item in items] == change_seqs
    updates = [item["payload"] for item in items]
    assert {u["wall_show_passcode"] for u in updates} == {True, False}
    for payload in updates:
        assert "passcode" not in payload
        assert not {"orchid", "lily-pad"} & set(map(str, payload.values()))


async def test_passcode_guessing_is_rate_limited(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(join_rate_limit="3/minute")):
        room = await new_room(client, passcode="orchid")
        url = f"/api/rooms/{room['token']}/participants"
        statuses = [
            (await client.http.post(url, json={"name": "Mallory", "passcode": f"guess{n}"}))
            for n in range(4)
        ]
        assert [r.status_code for r in statuses] == [403, 403, 403, 429]
        assert int(statuses[-1].headers["retry-after"]) >= 1
        # Even the right passcode waits now: the limit counts attempts, not failures.
        late = await client.http.post(url, json={"name": "Mallory", "passcode": "orchid"})
        assert late.status_code == 429


async def test_me_and_mine_need_a_participant(client: AppClient) -> None:
    room = await new_room(client)
    client.http.cookies.clear()
    me = await client.http.get(f"/api/rooms/{room['token']}/me")
    assert me.status_code == 401 and me.json()["error"]["code"] == "not_joined"
    mine = await client.http.get(f"/api/rooms/{room['token']}/images?mine=true")
    assert mine.status_code == 401
    a = await join(client, room, "A")
    b = await join(client, room, "B")
    await upload(client, room["token"], photo(0), headers=a)
    await upload(client, room["token"], photo(1), headers=b)
    a_items = (
        await client.http.get(f"/api/rooms/{room['token']}/images?mine=1", headers=a)
    ).json()["items"]
    assert [item["uploader_name"] for item in a_items] == ["A"]


async def test_pending_image_is_hidden_from_other_guests_but_deletable_by_uploader(
    client: AppClient,
) -> None:
    room = await new_room(client, moderation="approve")
    owner = await join(client, room, "Owner")
    other = await join(client, room, "Other")
    pending = (await upload(client, room["token"], photo(0), headers=owner)).json()
    url = f"/api/rooms/{room['token']}/images/{pending['id']}"
    assert (await client.http.delete(url, headers=other)).status_code == 403
    assert (await client.http.delete(url, headers=owner)).status_code == 204
    events = (await client.http.get(f"/api/rooms/{room['token']}/events")).json()["items"]
    assert [e["kind"] for e in events] == ["moderation_queue", "moderation_queue"]
    assert events[-1]["payload"]["pending_count"] == 0


async def test_joining_again_keeps_the_participant_and_its_quota(client: AppClient) -> None:
    room = await new_room(client, max_uploads_per_guest=1)
    token = room["token"]
    url = f"/api/rooms/{token}/participants"
    first = await client.http.post(url, json={"name": "Kim"})  # the cookie stays on the client
    assert (await upload(client, token, photo(0))).status_code == 201
    again = await client.http.post(url, json={"name": "Kimberly"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.json()["participant_key"] != first.json()["participant_key"]
    old_key = {"X-Participant-Key": first.json()["participant_key"]}
    client.http.cookies.clear()
    assert (await client.http.get(f"/api/rooms/{token}/me", headers=old_key)).status_code == 401
    new_key = {"X-Participant-Key": again.json()["participant_key"]}
    me = (await client.http.get(f"/api/rooms/{token}/me", headers=new_key)).json()
    assert (me["name"], me["upload_count"], me["uploads_left"]) == ("Kimberly", 1, 0)
    over = await upload(client, token, photo(1), headers=new_key)
    assert over.status_code == 429 and over.json()["error"]["code"] == "guest_quota_reached"
    renamed = await client.http.patch(
        f"/api/rooms/{token}/me", json={"name": "  K.  "}, headers=new_key
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "K."
    listed = (await client.http.get(f"/api/rooms/{token}/images")).json()["items"]
    assert [item["uploader_name"] for item in listed] == ["K."]
    bad = await client.http.patch(f"/api/rooms/{token}/me", json={"name": ""}, headers=new_key)
    assert bad.status_code == 422
