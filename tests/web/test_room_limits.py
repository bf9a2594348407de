"""Room limits against abuse, on both databases: a room's byte quota over the stored
originals, and a host's choice that only participants who joined may upload (so the
per-guest quota holds)."""

from __future__ import annotations

from tests.conftest import AppClient
from tests.web.test_host_controls import host, join, new_room, photo
from tests.web.test_images import upload


async def test_anonymous_uploads_are_refused_when_the_host_requires_a_join(
    backend_client: AppClient,
) -> None:
    room = await new_room(backend_client, max_uploads_per_guest=1)
    # Without require_join, anonymous uploads are not held to the per-guest quota.
    assert (await upload(backend_client, room["token"], photo(1))).status_code == 201
    assert (await upload(backend_client, room["token"], photo(2))).status_code == 201
    changed = await backend_client.http.patch(
        f"/api/rooms/{room['token']}", json={"require_join": True}, headers=host(room)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["require_join"] is True
    public = await backend_client.http.get(f"/api/rooms/{room['token']}")
    assert public.json()["require_join"] is True

    refused = await upload(backend_client, room["token"], photo(3))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "join_required"
    guest = await join(backend_client, room, "Ada")
    assert (await upload(backend_client, room["token"], photo(3), headers=guest)).status_code == 201
    again = await upload(backend_client, room["token"], photo(4), headers=guest)
    assert again.json()["error"]["code"] == "guest_quota_reached"
    # The host still uploads without joining.
    hosted = await upload(backend_client, room["token"], photo(5), headers=host(room))
    assert hosted.status_code == 201, hosted.text


async def test_a_room_byte_quota_refuses_the_upload_that_would_pass_it(
    backend_client: AppClient,
) -> None:
    first, second = photo(10), photo(11)
    room = await new_room(backend_client, max_bytes=len(first) + len(second) - 1)
    assert room["max_bytes"] == len(first) + len(second) - 1
    stored = await upload(backend_client, room["token"], first)
    assert stored.status_code == 201, stored.text
    # One byte short of both: the second is refused (docs/decisions/0018-room-byte-quota.md).
    refused = await upload(backend_client, room["token"], second)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "room_storage_full"
    view = await backend_client.http.get(f"/api/rooms/{room['token']}/host", headers=host(room))
    assert view.json()["stored_bytes"] == len(first)
    # Deleting frees its bytes (the triggers of migration 0004 keep the total).
    deleted = await backend_client.http.delete(
        f"/api/rooms/{room['token']}/images/{stored.json()['id']}", headers=host(room)
    )
    assert deleted.status_code == 204
    assert (await upload(backend_client, room["token"], second)).status_code == 201
    view = await backend_client.http.get(f"/api/rooms/{room['token']}/host", headers=host(room))
    assert view.json()["stored_bytes"] == len(second)


async def test_room_limit_settings_are_validated(backend_client: AppClient) -> None:
    for body, code in (
        ({"max_bytes": 0}, "invalid_max_bytes"),
        ({"max_bytes": "10"}, "invalid_max_bytes"),
        ({"require_join": "yes"}, "invalid_require_join"),
    ):
        response = await backend_client.http.post("/api/rooms", json={"title": "t", **body})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == code
    room = await new_room(backend_client)
    assert (room["max_bytes"], room["require_join"], room["stored_bytes"]) == (None, False, 0)
