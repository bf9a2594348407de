"""Reconnecting clients: replay of missed events from the log, snapshots, the HTTP event log."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient

ROOM_EVENTS = ("image_added", "image_removed", "snapshot")


async def _room(http: httpx.AsyncClient) -> dict:
    response = await http.post("/api/rooms", json={"title": "replay"})
    assert response.status_code == 201
    return response.json()


async def _upload(http: httpx.AsyncClient, token: str, name: str, size: int) -> dict:
    data = make_image_bytes("jpeg", name=name, size=(size, size * 3 // 4))
    response = await http.post(
        f"/api/rooms/{token}/images", files={"file": ("p.jpg", data, "image/jpeg")}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _delete(http: httpx.AsyncClient, room: dict, image_id: int) -> None:
    response = await http.delete(
        f"/api/rooms/{room['token']}/images/{image_id}",
        headers={"Authorization": f"Bearer {room['host_key']}"},
    )
    assert response.status_code == 204


async def test_reconnect_replays_exactly_the_missed_events_then_live(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http)
        seen = await _upload(http, room["token"], "coffee", 320)  # seq 1, already applied
        missed = [await _upload(http, room["token"], name, 330) for name in ("rocket", "chelsea")]
        await _delete(http, room, seen["id"])  # seq 4

        client = LiveClient(live_server.base_url, room["token"], last_seq=seen["seq"])
        await client.connect()
        try:
            got = [await client.next(*ROOM_EVENTS) for _ in range(3)]
            assert got == [
                ("image_added", missed[0]),
                ("image_added", missed[1]),
                ("image_removed", {"id": seen["id"], "seq": 4}),
            ]
            live = await _upload(http, room["token"], "astronaut", 340)
            assert await client.next(*ROOM_EVENTS) == ("image_added", live)
            assert live["seq"] == 5
        finally:
            await client.close()


async def test_client_without_last_seq_gets_only_live_events(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http)
        await _upload(http, room["token"], "coffee", 320)
        client = LiveClient(live_server.base_url, room["token"])
        await client.connect()
        try:
            live = await _upload(http, room["token"], "rocket", 330)
            assert await client.next(*ROOM_EVENTS) == ("image_added", live)
        finally:
            await client.close()


async def test_too_far_behind_gets_a_snapshot(make_settings: SettingsFactory) -> None:
    async for server in run_server(make_settings(replay_limit=2)):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            room = await _room(http)
            images = [
                await _upload(http, room["token"], name, 300 + n)
                for n, name in enumerate(("coffee", "rocket", "chelsea", "astronaut"))
            ]
            await _delete(http, room, images[1]["id"])
            expected, seq = [images[0], images[2], images[3]], 5

            for last_seq in (0, 999):  # far behind, or a seq this room never had
                client = LiveClient(server.base_url, room["token"], last_seq=last_seq)
                await client.connect()
                try:
                    event, snapshot = await client.next(*ROOM_EVENTS)
                    assert event == "snapshot"
                    assert snapshot == {"seq": seq, "images": expected}
                    live = await _upload(http, room["token"], "coffee", 400 + last_seq % 7)
                    assert await client.next(*ROOM_EVENTS) == ("image_added", live)
                    expected, seq = [*expected, live], live["seq"]
                finally:
                    await client.close()


async def test_http_event_log_pages(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http)
        first = await _upload(http, room["token"], "coffee", 320)
        second = await _upload(http, room["token"], "rocket", 320)
        await _delete(http, room, first["id"])
        url = f"/api/rooms/{room['token']}/events"
        page = (await http.get(url, params={"after": "1", "limit": "1"})).json()
        assert page == {
            "items": [{"seq": 2, "kind": "image_added", "payload": second}],
            "next_after": 2,
        }
        rest = (await http.get(url, params={"after": "2"})).json()
        assert rest == {
            "items": [
                {"seq": 3, "kind": "image_removed", "payload": {"id": first["id"], "seq": 3}}
            ],
            "next_after": None,
        }
        assert (await http.get(url, params={"after": "x"})).status_code == 422
