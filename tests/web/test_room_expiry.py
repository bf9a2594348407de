"""Expiry as people see it, on both database backends: an expired room's pages name the room
and when it ended (the API stays 404), and the host page warns when expiry is a week away."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from tests.conftest import AppClient, _app_client
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
