"""Cross-origin requests over HTTP: the origin guard on changes, JSON only as JSON, and the
Socket.IO handshake's origin check.

Browsers name the page's origin in ``Origin`` (and ``Sec-Fetch-Site``); these tests send those
headers as Chromium does (tests/e2e/test_cross_origin.py drives a real one). The app is served
at ``http://testserver``; ``http://testserver:8081`` is another origin of the same site.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.photos import make_image_bytes
from web.settings import Settings

OWN = "http://testserver"
SIBLING = "http://testserver:8081"
PASSCODE = "tulip-42"


async def passcode_room(client: AppClient) -> dict[str, Any]:
    response = await client.http.post(
        "/api/rooms", json={"title": "Board meeting", "passcode": PASSCODE}
    )
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def join(client: AppClient, room: dict[str, Any], name: str = "Grace") -> str:
    """Join (the client keeps the participant cookie); returns the participant key."""
    response = await client.http.post(
        f"/api/rooms/{room['token']}/participants", json={"name": name, "passcode": PASSCODE}
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["participant_key"]
    return key


async def state(client: AppClient, room: dict[str, Any], key: str) -> dict[str, Any]:
    """The guest's name (by cookie), whether its key still works, the room's image count."""
    token = room["token"]
    me = await client.http.get(f"/api/rooms/{token}/me")
    # The key, when sent, identifies the caller (the cookie is not looked at).
    by_key = await client.http.get(f"/api/rooms/{token}/me", headers={"X-Participant-Key": key})
    host = await client.http.get(
        f"/api/rooms/{token}/host", headers={"Authorization": f"Bearer {room['host_key']}"}
    )
    return {
        "name": me.json()["name"],
        "key_works": by_key.status_code == 200,
        "images": host.json()["image_count"] + host.json()["pending_count"],
    }


def changes(room: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every change a guest's cookie allows, as keyword arguments of ``httpx.request``."""
    token = room["token"]
    photo = make_image_bytes("jpeg", size=(320, 240))
    return {
        "rename": {"method": "PATCH", "url": f"/api/rooms/{token}/me", "json": {"name": "M"}},
        "rejoin": {
            "method": "POST",
            "url": f"/api/rooms/{token}/participants",
            "content": b'{"name": "Mallory"}',
            "headers": {"Content-Type": "text/plain"},
        },
        "upload": {
            "method": "POST",
            "url": f"/api/rooms/{token}/images",
            "files": {"file": ("cat.jpg", photo, "image/jpeg")},
        },
    }


@pytest.mark.parametrize(
    "browser_headers",
    [
        {"Origin": SIBLING, "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},  # sandboxed frames, some redirects
        {"Sec-Fetch-Site": "same-site"},  # no Origin: still a page of another origin
        {"Origin": "https://testserver"},  # same host, other scheme
    ],
)
async def test_cookie_authenticated_changes_from_other_origins_are_refused(
    backend_client: AppClient, browser_headers: dict[str, str]
) -> None:
    room = await passcode_room(backend_client)
    key = await join(backend_client, room)
    before = await state(backend_client, room, key)
    for label, request in changes(room).items():
        headers = {**request.pop("headers", {}), **browser_headers}
        response = await backend_client.http.request(**request, headers=headers)
        assert response.status_code == 403, (label, response.text)
        assert response.json()["error"]["code"] == "cross_origin_refused"
        assert await state(backend_client, room, key) == before, label


async def test_changes_from_the_own_origin_and_from_programs_go_through(
    client: AppClient,
) -> None:
    room = await passcode_room(client)
    key = await join(client, room)
    token = room["token"]
    own = {"Origin": OWN, "Sec-Fetch-Site": "same-origin"}
    renamed = await client.http.patch(f"/api/rooms/{token}/me", json={"name": "G"}, headers=own)
    assert renamed.status_code == 200 and renamed.json()["name"] == "G"
    # No Origin, no Sec-Fetch-Site: curl, scripts.
    renamed = await client.http.patch(f"/api/rooms/{token}/me", json={"name": "G2"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "G2"
    # Credentials in a header cannot come from another origin's page (CORS preflight).
    by_key = await client.http.patch(
        f"/api/rooms/{token}/me",
        json={"name": "G3"},
        headers={"Origin": SIBLING, "X-Participant-Key": key},
    )
    assert by_key.status_code == 200 and by_key.json()["name"] == "G3"
    by_host = await client.http.patch(
        f"/api/rooms/{token}",
        json={"title": "Renamed"},
        headers={"Origin": SIBLING, "Authorization": f"Bearer {room['host_key']}"},
    )
    assert by_host.status_code == 200 and by_host.json()["title"] == "Renamed"


async def test_allowed_origins_and_the_public_base_url_are_accepted(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        public_base_url="https://photos.example.org/",
        allowed_origins="https://wall.example.org, http://testserver:8081",
    )
    async for client in _app_client(settings):
        room = await passcode_room(client)
        await join(client, room)
        url = f"/api/rooms/{room['token']}/me"
        for origin in ("https://photos.example.org", "https://wall.example.org", SIBLING, OWN):
            response = await client.http.patch(
                url, json={"name": origin[-5:]}, headers={"Origin": origin}
            )
            assert response.status_code == 200, (origin, response.text)
        refused = await client.http.patch(
            url, json={"name": "M"}, headers={"Origin": "http://testserver:8082"}
        )
        assert refused.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"content": b'{"title": "x"}', "headers": {"Content-Type": "text/plain"}},
        {"content": b'{"title": "x"}', "headers": {"Content-Type": "text/plain;charset=UTF-8"}},
        {"data": {"title": "x"}},  # application/x-www-form-urlencoded
        {"files": {"title": (None, "x")}},  # multipart/form-data
        {"content": b'{"title": "x"}'},  # a body with no Content-Type at all
    ],
)
async def test_json_endpoints_refuse_bodies_not_sent_as_json(
    client: AppClient, body: dict[str, Any]
) -> None:
    room = await passcode_room(client)
    await join(client, room)
    token = room["token"]
    host = {"Authorization": f"Bearer {room['host_key']}"}
    endpoints = [
        ("POST", "/api/rooms", {}),
        ("PATCH", f"/api/rooms/{token}", host),
        ("PATCH", f"/api/rooms/{token}/me", {}),
        ("POST", f"/api/rooms/{token}/participants", {}),
        ("POST", f"/api/rooms/{token}/links", host),
    ]
    for method, url, headers in endpoints:
        response = await client.http.request(
            method, url, **{**body, "headers": {**body.get("headers", {}), **headers}}
        )
        assert response.status_code == 415, (method, url, response.text)
        assert response.json()["error"]["code"] == "unsupported_media_type"
    view = await client.http.get(f"/api/rooms/{token}/host", headers=host)
    assert view.json()["title"] == "Board meeting"
    assert (await client.http.get(f"/api/rooms/{token}/me")).json()["name"] == "Grace"


async def test_json_with_parameters_and_bodyless_posts_are_accepted(client: AppClient) -> None:
    created = await client.http.post(
        "/api/rooms",
        content=b'{"title": "x"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert created.status_code == 201, created.text
    closed = await client.http.post(
        f"/api/rooms/{created.json()['token']}/close",
        headers={"Authorization": f"Bearer {created.json()['host_key']}"},
    )
    assert closed.status_code == 200, closed.text


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),
        (OWN, True),
        ("http://wall.example.org", True),
        (SIBLING, False),
        ("null", False),
        ("https://testserver", False),
    ],
)
async def test_socketio_handshake_checks_the_origin(
    make_settings: SettingsFactory, origin: str | None, accepted: bool
) -> None:
    settings = make_settings(allowed_origins="http://wall.example.org")
    async for client in _app_client(settings):
        headers = {"Origin": origin} if origin else {}
        response = await client.http.get(
            "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers
        )
        assert response.status_code == (200 if accepted else 400), response.text
        assert response.headers.get("access-control-allow-origin") == (origin if accepted else None)


@pytest.mark.parametrize("value", ["photos.example.org", "*", "https://a.example/path", "null"])
def test_allowed_origins_refuse_what_is_not_an_origin(value: str) -> None:
    with pytest.raises(ValidationError, match="allowed_origins"):
        Settings(allowed_origins=value)
