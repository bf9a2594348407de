"""Replays the hostile-request corpus: every entry a 4xx with the contract's error body, and
nothing stored changed (rooms, guests, images, events, files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import AppClient, run_server
from tests.corpus.hostile_requests import CORPUS, JPEG_MARKER, LONG_HOST, Hostile
from tests.leftovers import Snapshot
from tests.photos import make_image_bytes
from web.app import create_app
from web.settings import Settings

ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)


class Stage:
    """What the corpus runs against: an open room with one image and a joined guest, and a
    room with a passcode."""

    def __init__(
        self, room: dict[str, Any], guest_key: str, image: dict[str, Any], locked: dict[str, Any]
    ) -> None:
        self.room = room
        self.guest_key = guest_key
        self.image = image
        self.locked = locked

    @classmethod
    async def build(cls, http: httpx.AsyncClient) -> Stage:
        room = (await http.post("/api/rooms", json={"title": "Corpus"})).json()
        locked = (
            await http.post("/api/rooms", json={"title": "Locked", "passcode": "1234"})
        ).json()
        joined = await http.post(f"/api/rooms/{room['token']}/participants", json={"name": "Ann"})
        assert joined.status_code == 201, joined.text
        guest_key = joined.json()["participant_key"]
        http.cookies.clear()
        uploaded = await http.post(
            f"/api/rooms/{room['token']}/images",
            files={"file": ("a.jpg", make_image_bytes("jpeg", size=(64, 48)), "image/jpeg")},
            headers={"x-participant-key": guest_key},
        )
        assert uploaded.status_code == 201, uploaded.text
        return cls(room, guest_key, uploaded.json(), locked)

    def fill(self, template: str) -> str:
        image_id = str(self.image["id"])
        return (
            template.replace("{token}", self.room["token"])
            .replace("{locked}", self.locked["token"])
            .replace("{image_arabic}", image_id.translate(ARABIC_INDIC))
            .replace("{image}", image_id)
            .replace("{key}", self.image["url"].split("/")[2])
        )

    def request(self, entry: Hostile) -> tuple[str, str, dict[str, str], bytes]:
        headers = dict(entry.headers)
        if entry.auth == "host":
            headers["authorization"] = f"Bearer {self.room['host_key']}"
        elif entry.auth == "guest":
            headers["x-participant-key"] = self.guest_key
        body = entry.body.replace(JPEG_MARKER, make_image_bytes("jpeg", size=(40, 30)))
        body = self.fill(body.decode("latin-1")).encode("latin-1")
        return entry.method, self.fill(entry.path), headers, body

    async def stored(self, http: httpx.AsyncClient) -> list[Any]:
        """Everything a client can read of what is stored."""
        host = {"authorization": f"Bearer {self.room['host_key']}"}
        locked_host = {"authorization": f"Bearer {self.locked['host_key']}"}
        token = self.room["token"]
        views = [
            await http.get(f"/api/rooms/{token}/host", headers=host),
            await http.get(f"/api/rooms/{self.locked['token']}/host", headers=locked_host),
            await http.get(f"/api/rooms/{token}/me", headers={"x-participant-key": self.guest_key}),
            await http.get(f"/api/rooms/{token}/images"),
            await http.get(f"/api/rooms/{token}/events"),
            await http.get(self.image["url"]),
        ]
        assert all(view.status_code == 200 for view in views), [v.text for v in views]
        return [view.json() for view in views[:-1]] + [views[-1].content]


@pytest.fixture
async def lenient_client(backend_settings: Settings) -> AsyncIterator[AppClient]:
    """Like ``backend_client``, but an exception in the app is answered (500) as a server
    would, not raised into the test, so one run lists every wrong answer. The corpus creates
    hundreds of rooms from one address: the room-creation limit is lifted for it."""
    settings = backend_settings.model_copy(update={"room_create_rate_limit": "100000/hour"})
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield AppClient(http=http, settings=settings, app=app)


def _error_shape(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != {"code", "message"}:
        return None
    if not isinstance(error["message"], str) or not error["message"]:
        return None
    return error["code"] if isinstance(error["code"], str) else None


async def test_every_hostile_request_is_a_4xx_that_changes_nothing(
    lenient_client: AppClient,
) -> None:
    http = lenient_client.http
    stage = await Stage.build(http)
    before_rows = await Snapshot.take(lenient_client.settings)
    before = await stage.stored(http)
    wrong: list[str] = []
    for entry in CORPUS:
        method, path, headers, body = stage.request(entry)
        http.cookies.clear()  # a join's cookie would make the next join re-key the guest
        response = await http.request(method, path, headers=headers, content=body)
        code = _error_shape(response)
        if (response.status_code, code) != (entry.status, entry.code):
            wrong.append(
                f"{entry.name}: {response.status_code} {code or response.text[:80]!r}, "
                f"expected {entry.status} {entry.code}"
            )
    assert not wrong, f"{len(wrong)} of {len(CORPUS)} answered wrongly:\n" + "\n".join(wrong)
    assert await stage.stored(http) == before
    await before_rows.assert_unchanged(lenient_client.settings)


async def test_long_host_header_through_a_real_server(backend_settings: Settings) -> None:
    """uvicorn passes a 2,300-character Host on; the QR code and join URL answer 400."""
    async for server in run_server(backend_settings):
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            room = (await http.post("/api/rooms", json={"title": "Party"})).json()
            for path in (f"/api/rooms/{room['token']}/qr.png", f"/api/rooms/{room['token']}"):
                response = await http.get(path, headers={"host": LONG_HOST})
                assert response.status_code == 400, (path, response.text[:200])
                assert response.json()["error"]["code"] == "invalid_host"
            assert (await http.get(f"/api/rooms/{room['token']}/qr.png")).status_code == 200
