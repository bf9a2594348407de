"""Expiry as people see it, on both database backends: an expired room's pages name the room
and when it ended (the API stays 404), the host page warns when expiry is a week away, and a
room with ``gallery_grace_days`` keeps its gallery read-only that long after expiry."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.conftest import AppClient, _app_client
from tests.photos import make_image_bytes
from tests.web.test_images import upload
from web.database import Database
from web.schema import rooms
from web.settings import Settings


async def test_expired_room_pages_say_it_ended(backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(update={"room_ttl_hours": 1e-9})
    async for client in _app_client(settings):
        created = await client.http.post("/api/rooms", json={"title": "Anna & Ben's wedding"})
        assert created.status_code == 201, created.text
        room = created.json()
        token = room["token"]
        for path in (f"/r/{token}", f"/r/{token}/wall", f"/r/{token}/host"):
            page = await client.http.get(path)
            assert page.status_code == 410, path
            text = html.unescape(page.text)
            assert "This room has ended" in text
            assert "Anna & Ben's wedding" in text
            ended = datetime.fromisoformat(room["expires_at"])
            assert f'datetime="{ended.isoformat()}"' in page.text
            assert ended.strftime("%-d %B %Y") in text
        # The API keeps the contract: an expired token is 404, like an unknown one.
        api = await client.http.get(f"/api/rooms/{token}")
        assert api.status_code == 404
        assert api.json()["error"]["code"] == "room_not_found"
        unknown = await client.http.get("/r/" + "A" * 24)
        assert unknown.status_code == 404
        assert "This room has ended" not in unknown.text


async def _room(client: AppClient, expires_at: datetime | None) -> dict:
    body: dict = {"title": "Conference"}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    response = await client.http.post("/api/rooms", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_host_page_warns_when_expiry_is_near(backend_client: AppClient) -> None:
    soon = await _room(backend_client, datetime.now(UTC) + timedelta(days=3))
    page = await backend_client.http.get(f"/r/{soon['token']}/host")
    assert page.status_code == 200
    assert 'data-testid="expiry-warning"' in page.text
    assert "will be deleted on" in page.text
    assert f'data-expires-at="{soon["expires_at"]}"' in page.text
    # Guests and the wall are not warned; a room far from expiry is not either.
    guest = await backend_client.http.get(f"/r/{soon['token']}")
    assert 'data-testid="expiry-warning"' not in guest.text
    later = await _room(backend_client, None)
    far = await backend_client.http.get(f"/r/{later['token']}/host")
    assert far.status_code == 200
    assert 'data-testid="expiry-warning"' not in far.text


async def _set_expiry(client: AppClient, token: str, expires_at: datetime) -> None:
    """Move a room's expiry (as time passing would), straight in the database."""
    database = Database(client.settings)
    try:
        async with database.transaction() as connection:
            await connection.execute(
                update(rooms).where(rooms.c.token == token).values(expires_at=expires_at)
            )
    finally:
        await database.close()


async def test_gallery_grace_days_is_validated(backend_client: AppClient) -> None:
    room = await _room(backend_client, None)
    auth = {"Authorization": f"Bearer {room['host_key']}"}
    path = f"/api/rooms/{room['token']}"
    for bad in (-1, 91, 1.5, "7", True):
        response = await backend_client.http.patch(
            path, json={"gallery_grace_days": bad}, headers=auth
        )
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_gallery_grace_days"
    for value, stored in ((14, 14), (0, None), (None, None)):
        response = await backend_client.http.patch(
            path, json={"gallery_grace_days": value}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["gallery_grace_days"] == stored


async def test_grace_keeps_gallery_read_only_then_it_is_gone(backend_client: AppClient) -> None:
    room = await _room(backend_client, None)
    token = room["token"]
    auth = {"Authorization": f"Bearer {room['host_key']}"}
    patched = await backend_client.http.patch(
        f"/api/rooms/{token}", json={"gallery_grace_days": 2}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    sent = await upload(backend_client, token, make_image_bytes("JPEG"))
    assert sent.status_code == 201, sent.text
    image = sent.json()

    ended_at = datetime.now(UTC) - timedelta(hours=1)
    await _set_expiry(backend_client, token, ended_at)
    page = await backend_client.http.get(f"/r/{token}")
    assert page.status_code == 410
    text = html.unescape(page.text)
    assert "This room has ended" in text and "read-only" in text
    assert f'data-image-id="{image["id"]}"' in page.text
    assert image["thumb_url"] in page.text
    assert (ended_at + timedelta(days=2)).strftime("%-d %B %Y") in text
    thumb = await backend_client.http.get(image["thumb_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    listing = await backend_client.http.get(f"/api/rooms/{token}/images")
    assert listing.status_code == 200
    assert [item["id"] for item in listing.json()["items"]] == [image["id"]]
    refused = await upload(backend_client, token, make_image_bytes("JPEG"))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "room_ended"
    # Everything else about the room is gone, as for any expired room.
    assert (await backend_client.http.get(f"/api/rooms/{token}")).status_code == 404

    # Past the grace period: the gallery is gone too.
    await _set_expiry(backend_client, token, datetime.now(UTC) - timedelta(days=2, hours=1))
    after = await backend_client.http.get(f"/r/{token}")
    assert after.status_code == 410
    assert "This room has ended" in html.unescape(after.text)
    assert 'data-testid="ended-gallery"' not in after.text
    gone = await backend_client.http.get(f"/api/rooms/{token}/images")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "room_not_found"
    late = await upload(backend_client, token, make_image_bytes("JPEG"))
    assert late.status_code == 404
