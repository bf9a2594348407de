"""The live side on a real uvicorn: room isolation, exactly-once delivery, refused tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import socketio

from realtime.delivery import LiveDelivery
from realtime.namespace import Handshake, RoomNamespace
from realtime.presence import LocalPresence
from tests.conftest import LiveServer
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient
from web.event_log import RoomEvent


async def _room(http: httpx.AsyncClient, title: str) -> dict:
    response = await http.post("/api/rooms", json={"title": title})
    assert response.status_code == 201
    return response.json()


async def _upload(http: httpx.AsyncClient, token: str, data: bytes) -> dict:
    response = await http.post(
        f"/api/rooms/{token}/images", files={"file": ("p.jpg", data, "image/jpeg")}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_upload_reaches_its_room_exactly_once_and_no_other(
    live_server: LiveServer, transport: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room_a = await _room(http, "A")
        room_b = await _room(http, "B")
        a1 = LiveClient(live_server.base_url, room_a["token"], "a1")
        a2 = LiveClient(live_server.base_url, room_a["token"], "a2")
        b1 = LiveClient(live_server.base_url, room_b["token"], "b1")
        for client in (a1, a2, b1):
            await client.connect(transport)
        try:
            first = await _upload(http, room_a["token"], make_image_bytes("jpeg", name="coffee"))
            for client in (a1, a2):
                assert await client.next("image_added") == ("image_added", first)

            # B's first image event must be its own: A's image never reached B.
            own = await _upload(http, room_b["token"], make_image_bytes("png", name="rocket"))
            assert await b1.next("image_added", "image_removed") == ("image_added", own)

            # The next event on A is the second image, not a repeat of the first.
            second = await _upload(http, room_a["token"], make_image_bytes("jpeg", name="chelsea"))
            for client in (a1, a2):
                assert await client.next("image_added") == ("image_added", second)

            deleted = await http.delete(
                f"/api/rooms/{room_a['token']}/images/{first['id']}",
                headers={"Authorization": f"Bearer {room_a['host_key']}"},
            )
            assert deleted.status_code == 204
            for client in (a1, a2):
                event, data = await client.next("image_added", "image_removed")
                assert (event, data["id"]) == ("image_removed", first["id"])
                assert data["seq"] == second["seq"] + 1
        finally:
            await asyncio.gather(*(client.close() for client in (a1, a2, b1)))


async def test_presence_counts_connected_clients(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        room = await _room(http, "presence")
    first = LiveClient(live_server.base_url, room["token"], "one")
    second = LiveClient(live_server.base_url, room["token"], "two")

    async def count_becomes(expected: int, before: int) -> None:
        # Changes within a second are coalesced: intermediate counts may be skipped, but
        # every count on the way is the one before the change or the one after.
        seen: list[int] = []
        while not seen or seen[-1] != expected:
            try:
                seen.append((await first.next("presence"))[1]["count"])
            except TimeoutError:
                raise AssertionError(f"presence never became {expected}: {seen}") from None
        assert set(seen) <= {before, expected}, seen

    await first.connect()
    await count_becomes(1, before=1)
    await second.connect()
    await count_becomes(2, before=1)
    await second.close()
    await count_becomes(1, before=2)
    await first.close()


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ({"token": "D" * 24, "name": "x"}, "room_not_found"),
        ({"token": "not a token", "name": "x"}, "room_not_found"),
        ({"name": "no token"}, "invalid_auth"),
        (None, "invalid_auth"),
    ],
)
async def test_unknown_or_missing_token_is_refused_with_reason(
    live_server: LiveServer, auth: dict | None, code: str
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[object] = []
    client.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            live_server.base_url, auth=auth, transports=["websocket"], wait_timeout=10
        )
    assert not client.connected
    assert len(reasons) == 1
    assert isinstance(reasons[0], dict)
    assert "token" in reasons[0]["message"]
    # The machine-readable code clients decide on; the data repeats the message unchanged.
    assert reasons[0]["data"] == {"message": reasons[0]["message"], "code": code}


class _UnreadLog:
    """A room log for a namespace that refuses before it reads any."""

    async def events_after(self, room_id: int, after_seq: int, limit: int) -> list[RoomEvent]:
        raise AssertionError("a refused connection reads no events")

    async def snapshot(self, room_id: int) -> tuple[int, list[dict[str, Any]]]:
        raise AssertionError("a refused connection reads no snapshot")

    async def last_seqs(self, room_ids: list[int]) -> dict[int, int]:
        raise AssertionError("a refused connection reads no seq")


async def test_room_lookup_failure_is_refused_as_retryable_with_its_code() -> None:
    async def unreachable(handshake: Handshake) -> tuple[int, int]:
        raise OSError("database unreachable")

    server = socketio.AsyncServer(async_mode="asgi")
    namespace = RoomNamespace(unreachable, LiveDelivery(server, _UnreadLog()), LocalPresence())
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        await namespace.on_connect("sid", {}, {"token": "D" * 24, "name": "x"})
    message = "service temporarily unavailable, retry shortly"
    assert refused.value.error_args == {
        "message": message,
        "data": {"message": message, "code": "database_unavailable"},
    }
