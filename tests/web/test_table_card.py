"""The table card page over HTTP, on both database backends: its status codes and security
headers, what it prints (grouped code, typeable addresses, the passcode hint but never the
passcode), and the text helpers behind it. The printed layout is tested in Chromium
(tests/e2e/test_table_card.py)."""

from __future__ import annotations

import html

from tests.conftest import AppClient, _app_client
from web.pages import SECURITY_HEADERS
from web.rooms.table_card import QR_WIDTH_MM, grouped_code, table_card_context, typed_address
from web.settings import Settings


def test_grouped_code_and_typed_address() -> None:
    assert grouped_code("7K3QX9AB") == "7K3Q X9AB"
    assert typed_address("http://192.168.1.20:8000/j/7K3QX9AB") == "192.168.1.20:8000/j/7K3QX9AB"
    assert typed_address("https://photos.example.org/base/j/7K3QX9AB") == (
        "photos.example.org/base/j/7K3QX9AB"
    )


def test_card_context_of_a_room_with_and_without_a_code() -> None:
    view = {"join_url": "https://photos.example.org/j/7K3QX9AB", "code": "7K3QX9AB"}
    context = table_card_context({**view, "qr_modules": 33})
    assert context["join_address"] == "photos.example.org/j/7K3QX9AB"
    assert context["site_address"] == "photos.example.org"
    assert context["grouped_code"] == "7K3Q X9AB"
    assert context["module_mm"] == QR_WIDTH_MM / 33
    # Ten times the symbol's width, the quiet zone (4 modules a side) left out.
    assert context["scan_distance_m"] == QR_WIDTH_MM / 33 * 25 * 10 / 1000
    older = {"join_url": "https://photos.example.org/r/" + "t" * 24, "code": None}
    context = table_card_context({**older, "qr_modules": 41})
    assert context["join_address"] == "photos.example.org/r/" + "t" * 24
    assert context["grouped_code"] is None and context["site_address"] is None


async def test_card_page(backend_client: AppClient) -> None:
    created = await backend_client.http.post(
        "/api/rooms", json={"title": "Anna & Ben's wedding", "passcode": "tulips"}
    )
    assert created.status_code == 201, created.text
    room = created.json()
    assert room["card_url"] == f"http://testserver/r/{room['token']}/card"
    page = await backend_client.http.get(f"/r/{room['token']}/card")
    assert page.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    text = html.unescape(page.text)
    assert text.count('data-testid="table-card"') == 4
    assert text.count("Anna & Ben's wedding") >= 4
    assert text.count(grouped_code(room["code"])) == 4
    address = '<strong class="table-card-address">testserver{}</strong>'
    assert text.count(address.format(f"/j/{room['code']}")) == 4
    assert text.count(address.format("")) == 4
    assert text.count("This room has a passcode — ask the host") == 4
    assert "tulips" not in text
    assert "<script>" not in page.text and " style=" not in page.text
    host = await backend_client.http.get(f"/r/{room['token']}/host")
    assert f'href="{room["card_url"]}" data-testid="table-card-link"' in host.text


async def test_card_of_an_ended_or_unknown_room(backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(update={"room_ttl_hours": 1e-9})
    async for client in _app_client(settings):
        created = await client.http.post("/api/rooms", json={"title": "Lea's farewell"})
        assert created.status_code == 201, created.text
        ended = await client.http.get(f"/r/{created.json()['token']}/card")
        assert ended.status_code == 410
        assert "This room has ended" in ended.text
        assert 'data-testid="table-card"' not in ended.text
        unknown = await client.http.get("/r/" + "A" * 24 + "/card")
        assert unknown.status_code == 404
        for answer in (ended, unknown):
            assert (
                answer.headers["Content-Security-Policy"]
                == SECURITY_HEADERS["Content-Security-Policy"]
            )
