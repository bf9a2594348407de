"""Rooms over HTTP, on both database backends: creation, lookup, host key, QR codes, joining."""

from __future__ import annotations

import io
import re

import zxingcpp
from PIL import Image
from sqlalchemy import select

from tests.conftest import AppClient, SettingsFactory, _app_client
from web.database import Database
from web.schema import rooms
from web.security import digest


async def create_room(client: AppClient, title: str = "Anna & Ben's wedding") -> dict:
    response = await client.http.post("/api/rooms", json={"title": title})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_room_answers_contract_fields(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    assert room["title"] == "Anna & Ben's wedding"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", room["token"])
    assert len(room["token"]) * 6 >= 128
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", room["code"])
    assert room["join_url"] == f"http://testserver/j/{room['code']}"
    assert room["host_key"] and room["host_key"] != room["token"]
    assert room["created_at"] < room["expires_at"]
    assert room["created_at"].endswith("+00:00")


async def test_tokens_and_keys_are_unique(backend_client: AppClient) -> None:
    made = [await create_room(backend_client, f"room {n}") for n in range(5)]
    assert len({room["token"] for room in made}) == 5
    assert len({room["host_key"] for room in made}) == 5


async def test_public_view_hides_host_key_and_key_is_stored_hashed(
    backend_client: AppClient,
) -> None:
    room = await create_room(backend_client)
    response = await backend_client.http.get(f"/api/rooms/{room['token']}")
    assert response.status_code == 200
    public = response.json()
    assert "host_key" not in public and room["host_key"] not in response.text
    assert public["join_url"] == room["join_url"] and public["image_count"] == 0

    database = Database(backend_client.settings)
    try:
        async with database.read() as connection:
            stored = await connection.scalar(
                select(rooms.c.host_key_hash).where(rooms.c.token == room["token"])
            )
    finally:
        await database.close()
    assert stored == digest(room["host_key"]) and stored != room["host_key"]


async def test_unknown_and_malformed_tokens_are_404(backend_client: AppClient) -> None:
    for token in ("A" * 24, "short", "bad token with spaces!", "x" * 300):
        response = await backend_client.http.get(f"/api/rooms/{token}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "room_not_found"
        assert "Traceback" not in response.text


async def test_expired_room_is_404(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(room_ttl_hours=1e-9)):
        room = await create_room(client)
        response = await client.http.get(f"/api/rooms/{room['token']}")
        assert response.status_code == 404
        qr = await client.http.get(f"/api/rooms/{room['token']}/qr.png")
        assert qr.status_code == 404


async def test_title_is_validated(backend_client: AppClient) -> None:
    for body in ({}, {"title": ""}, {"title": "   "}, {"title": 5}, {"title": "x" * 201}):
        response = await backend_client.http.post("/api/rooms", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_title"
    bad_json = await backend_client.http.post(
        "/api/rooms", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "invalid_json"


async def test_qr_png_decodes_to_join_url(client: AppClient) -> None:
    room = await create_room(client)
    response = await client.http.get(f"/api/rooms/{room['token']}/qr.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(response.content))
    assert min(picture.size) >= 400  # sharp enough to project
    decoded = zxingcpp.read_barcodes(picture)
    # Upper-cased whole (scheme, host and /J/{CODE} are case-insensitive): alphanumeric mode.
    assert [code.text for code in decoded] == [room["join_url"].upper()]


async def test_qr_svg_is_svg_of_join_url(client: AppClient) -> None:
    room = await create_room(client)
    response = await client.http.get(f"/api/rooms/{room['token']}/qr.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.content.lstrip().startswith(b"<?xml") and b"<svg" in response.content
    assert b"<script" not in response.content


async def test_qr_uses_public_base_url(make_settings: SettingsFactory) -> None:
    settings = make_settings(public_base_url="https://photos.example.org/")
    async for client in _app_client(settings):
        room = await create_room(client)
        assert room["join_url"] == f"https://photos.example.org/j/{room['code']}"
        assert room["join_url_reachable"] is True and room["join_url_warning"] is None
        response = await client.http.get(f"/api/rooms/{room['token']}/qr.png")
        decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.content)))
        assert decoded[0].text == room["join_url"].upper()


async def test_host_check_needs_the_right_key(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    other = await create_room(backend_client, "other")
    url = f"/api/rooms/{room['token']}/host"
    assert (await backend_client.http.get(url)).status_code == 401
    wrong = await backend_client.http.get(
        url, headers={"Authorization": f"Bearer {other['host_key']}"}
    )
    assert wrong.status_code == 403
    right = await backend_client.http.get(
        url, headers={"Authorization": f"Bearer {room['host_key']}"}
    )
    assert right.status_code == 200 and right.json()["token"] == room["token"]


async def test_join_sets_participant_cookie(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    response = await backend_client.http.post(
        f"/api/rooms/{room['token']}/participants", json={"name": "  Grandma   Rose "}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Grandma Rose" and len(body["participant_key"]) >= 43
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    # The cookie is signed, not the bearer key itself, and identifies the participant alone.
    assert body["participant_key"] not in cookie
    name, value = cookie.split(";")[0].split("=", 1)
    me_url = f"/api/rooms/{room['token']}/me"
    backend_client.http.cookies.clear()
    backend_client.http.cookies.set(name, value)
    me = await backend_client.http.get(me_url)
    assert me.status_code == 200 and me.json()["id"] == body["id"]
    assert me.json()["name"] == "Grandma Rose"
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    backend_client.http.cookies.set(name, forged)
    assert (await backend_client.http.get(me_url)).status_code == 401
    backend_client.http.cookies.clear()
    for name in ("", None, "x" * 61):
        bad = await backend_client.http.post(
            f"/api/rooms/{room['token']}/participants", json={"name": name}
        )
        assert bad.status_code == 422


async def test_pages_render_and_unknown_room_page_is_404(client: AppClient) -> None:
    room = await create_room(client)
    landing = await client.http.get("/")
    assert landing.status_code == 200 and "<form" in landing.text
    for path in ("", "/wall", "/host"):
        page = await client.http.get(f"/r/{room['token']}{path}")
        assert page.status_code == 200, path
        assert room["token"] in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    missing = await client.http.get("/r/" + "B" * 24)
    assert missing.status_code == 404


async def test_health_probes(client: AppClient) -> None:
    assert (await client.http.get("/healthz")).json() == {"status": "ok"}
    ready = await client.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
    }
