"""Short room codes and the short join URL ``/j/{code}``: generation, lookup in any case,
unknown codes, the lookup throttle, the QR version they buy, and join-URL reachability."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image

from tests.conftest import AppClient, SettingsFactory, _app_client
from web.rooms import views
from web.rooms.qr import _code, qr_payload
from web.security import ROOM_CODE_ALPHABET, new_room_code, normalize_room_code

CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{8}")


async def create_room(client: AppClient, title: str = "Gala") -> dict:
    response = await client.http.post("/api/rooms", json={"title": title})
    assert response.status_code == 201, response.text
    return response.json()


def test_codes_use_the_unambiguous_alphabet() -> None:
    assert len(ROOM_CODE_ALPHABET) == 32 and not set("ILOU") & set(ROOM_CODE_ALPHABET)
    codes = {new_room_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(CODE.fullmatch(code) for code in codes)
    assert normalize_room_code(" 7k3qx9ab ") == "7K3QX9AB"
    for bad in ("7K3QX9A", "7K3QX9ABC", "7K3QX9AI", "7K3QX9A-", ""):
        assert normalize_room_code(bad) is None, bad


async def test_code_opens_participant_page_in_any_case(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    assert CODE.fullmatch(room["code"])
    assert room["join_url"] == f"http://testserver/j/{room['code']}"
    public = (await backend_client.http.get(f"/api/rooms/{room['token']}")).json()
    assert public["code"] == room["code"]
    for path in (f"/j/{room['code']}", f"/J/{room['code']}", f"/j/{room['code'].lower()}"):
        page = await backend_client.http.get(path)
        assert page.status_code == 200, path
        assert room["token"] in page.text and "Gala" in page.text
    # The token URL keeps working.
    assert (await backend_client.http.get(f"/r/{room['token']}")).status_code == 200


async def test_codes_are_unique_and_unknown_code_is_404(client: AppClient) -> None:
    made = [await create_room(client, f"room {n}") for n in range(5)]
    assert len({room["code"] for room in made}) == 5
    taken = {room["code"] for room in made}
    unknown = next(code for code in (new_room_code() for _ in range(100)) if code not in taken)
    for path in (f"/j/{unknown}", "/j/short", "/j/IIIIIIII"):
        missing = await client.http.get(path)
        assert missing.status_code == 404, path
        assert "does not exist" in missing.text


async def test_code_lookups_are_throttled_per_address(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(open_join_rate_limit="3/minute")):
        room = await create_room(client)
        answers = [(await client.http.get(f"/j/{room['code']}")).status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        guess = await client.http.get("/j/00000000")
        assert guess.status_code == 429
        assert guess.json()["error"]["code"] == "rate_limited"
        assert int(guess.headers["retry-after"]) >= 1


async def test_qr_of_short_url_is_a_lower_version(client: AppClient) -> None:
    room = await create_room(client)
    token_url = f"http://192.168.1.20:8000/r/{room['token']}"
    short_url = f"http://192.168.1.20:8000/j/{room['code']}"
    assert qr_payload(short_url) == short_url.upper()
    assert qr_payload(token_url) == token_url  # the token is case-sensitive
    assert qr_payload(f"https://example.org/Photos/j/{room['code']}").startswith("https://")
    before, after = _code(token_url), _code(qr_payload(short_url))
    assert (before.version, before.modules_count) == (4, 33)
    assert (after.version, after.modules_count) == (2, 25)
    # The served PNG is that code: 25 modules plus the 4-module quiet zone, 16 px each.
    response = await client.http.get(f"/api/rooms/{room['token']}/qr.png")
    picture = Image.open(io.BytesIO(response.content))
    assert picture.size == ((25 + 8) * 16, (25 + 8) * 16)
    decoded = zxingcpp.read_barcodes(picture)
    assert [code.text for code in decoded] == [room["join_url"].upper()]


@pytest.mark.parametrize(
    ("url", "reachable"),
    [
        ("http://127.0.0.1:8000/j/7K3QX9AB", False),
        ("http://127.8.0.3/j/7K3QX9AB", False),
        ("http://[::1]:8000/j/7K3QX9AB", False),
        ("http://localhost:8000/j/7K3QX9AB", False),
        ("http://testserver/j/7K3QX9AB", False),
        ("http://192.168.1.20:8000/j/7K3QX9AB", True),
        ("https://photos.example.org/j/7K3QX9AB", True),
    ],
)
def test_join_url_warning(url: str, reachable: bool) -> None:
    warning = views.join_url_warning(url)
    assert (warning is None) is reachable
    if not reachable:
        assert "IMAGESHARK_PUBLIC_BASE_URL" in str(warning)


async def test_loopback_request_gets_lan_address_or_warning(
    make_settings: SettingsFactory,
) -> None:
    """On a server bound to every interface, a request to 127.0.0.1 yields a join URL on the
    machine's LAN address; when there is none, the join URL is flagged unreachable."""
    async for client in _app_client(make_settings(host="0.0.0.0")):
        response = await client.http.post(
            "/api/rooms", json={"title": "Loop"}, headers={"host": "127.0.0.1:8123"}
        )
        room = response.json()
        lan = views.LanAddress().get()
        if lan is not None:
            assert room["join_url"] == f"http://{lan}:8123/j/{room['code']}"
            assert room["join_url_reachable"] is True and room["join_url_warning"] is None
        else:
            assert room["join_url"].startswith("http://127.0.0.1:8123/j/")
            assert room["join_url_reachable"] is False
            assert "127.0.0.1" in room["join_url_warning"]
    # Bound to loopback only, the LAN address would not answer: flagged instead.
    async for client in _app_client(make_settings(host="127.0.0.1")):
        response = await client.http.post(
            "/api/rooms", json={"title": "Loop"}, headers={"host": "127.0.0.1:8123"}
        )
        room = response.json()
        assert room["join_url"] == f"http://127.0.0.1:8123/j/{room['code']}"
        assert room["join_url_reachable"] is False
        assert "Phones cannot open 127.0.0.1" in room["join_url_warning"]


async def test_a_taken_code_is_drawn_again(
    backend_client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await create_room(backend_client, "First")
    draws = iter([first["code"], first["code"], "7K3QX9AB"])
    monkeypatch.setattr("web.rooms.service.new_room_code", lambda: next(draws))
    second = await create_room(backend_client, "Second")
    assert second["code"] == "7K3QX9AB" and second["token"] != first["token"]
    page = await backend_client.http.get("/j/7k3qx9ab")
    assert page.status_code == 200 and second["token"] in page.text


async def test_a_direct_upload_on_loopback_is_sent_to_the_pages_own_origin(
    make_settings: SettingsFactory,
) -> None:
    """The join URL moves to the LAN address, but the ``PUT`` of a direct upload is called by
    the page itself, which its Content-Security-Policy lets reach only its own origin: a host
    trying the guest page on ``localhost`` of ``make run`` (bound to every interface) must get
    a target on ``localhost``."""
    async for client in _app_client(make_settings(host="0.0.0.0")):
        loopback = {"host": "localhost:8123"}
        room = (
            await client.http.post("/api/rooms", json={"title": "Loop"}, headers=loopback)
        ).json()
        asked = await client.http.post(
            f"/api/rooms/{room['token']}/uploads",
            json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000},
            headers={**loopback, "authorization": f"Bearer {room['host_key']}"},
        )
        assert asked.status_code == 201, asked.text
        assert asked.json()["url"].startswith(
            f"http://localhost:8123/api/rooms/{room['token']}/uploads/"
        )
