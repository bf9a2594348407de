"""Host controls on the live side: settings, closing and moderation reach every client once,
in the log's order, and a passcode room admits only its participants and host."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import socketio

from tests.conftest import LiveServer
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient


async def _room(http: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
    response = await http.post("/api/rooms", json={"title": "Gala", **settings})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _host(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


async def _upload(http: httpx.AsyncClient, room: dict[str, Any], variant: int) -> dict[str, Any]:
    response = await http.post(
        f"/api/rooms/{room['token']}/images",
        files={
            "file": ("p.jpg", make_image_bytes("jpeg", size=(300 + variant, 200)), "image/jpeg")
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_moderated_upload_reaches_clients_only_when_approved(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http, moderation="approve")
        wall = LiveClient(live_server.base_url, room["token"], "wall")
        await wall.connect()
        try:
            pending = await _upload(http, room, 0)
            assert pending["status"] == "pending"
            kind, queue = await wall.next("image_added", "moderation_queue")
            assert (kind, queue["pending_count"]) == ("moderation_queue", 1)
            assert queue["seq"] == pending["seq"]
            approved = await http.post(
                f"/api/rooms/{room['token']}/images/{pending['id']}/approve", headers=_host(room)
            )
            kind, image = await wall.next("image_added", "moderation_queue")
            assert kind == "image_added" and image == approved.json()
            assert image["status"] == "approved" and image["id"] == pending["id"]
        finally:
            await wall.close()


async def test_settings_and_closing_are_live_and_replayed(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http)
        guest = LiveClient(live_server.base_url, room["token"], "guest")
        await guest.connect()
        try:
            await http.patch(
                f"/api/rooms/{room['token']}",
                json={"wall_blanked": True, "wall_mode": "grid"},
                headers=_host(room),
            )
            kind, update = await guest.next("room_updated", "room_closed")
            assert kind == "room_updated"
            assert update["wall_blanked"] is True and update["wall_mode"] == "grid"
            assert "passcode" not in update and "host_key" not in update
            await http.post(f"/api/rooms/{room['token']}/close", headers=_host(room))
            kind, closed = await guest.next("room_updated", "room_closed")
            assert kind == "room_closed" and closed["seq"] == update["seq"] + 1
        finally:
            await guest.close()
        # A client that was away replays both, in order.
        late = LiveClient(live_server.base_url, room["token"], "late", last_seq=0)
        await late.connect()
        try:
            assert (await late.next("room_updated", "room_closed"))[0] == "room_updated"
            assert (await late.next("room_updated", "room_closed"))[0] == "room_closed"
        finally:
            await late.close()


async def _refusal(
    base_url: str, auth: dict[str, Any], cookie: str | None = None
) -> dict[str, Any] | None:
    """Connect with ``auth``; None when admitted, else the connect_error's
    ``{"message", "data"}``."""
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    headers = {"Cookie": cookie} if cookie else {}
    try:
        await client.connect(
            base_url, auth=auth, headers=headers, transports=["websocket"], wait_timeout=10
        )
    except socketio.exceptions.ConnectionError:
        reason = reasons[0]
        assert isinstance(reason, dict)
        return reason
    await client.disconnect()
    return None


@pytest.mark.parametrize("credential", ["cookie", "participant_key", "host_key"])
async def test_passcode_room_admits_participants_and_host_only(
    live_server: LiveServer, credential: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http, passcode="orchid")
        token = room["token"]
        refused = await _refusal(live_server.base_url, {"token": token, "name": "x"})
        assert refused is not None and "passcode" in refused["message"]
        assert refused["data"]["code"] == "passcode_required"
        joined = await http.post(
            f"/api/rooms/{token}/participants", json={"name": "Guest", "passcode": "orchid"}
        )
        assert joined.status_code == 201
        auth: dict[str, Any] = {"token": token, "name": "Guest"}
        cookie = None
        if credential == "cookie":
            cookie = joined.headers["set-cookie"].split(";")[0]
        elif credential == "participant_key":
            auth["participant_key"] = joined.json()["participant_key"]
        else:
            auth["host_key"] = room["host_key"]
        assert await _refusal(live_server.base_url, auth, cookie) is None
        forged = {**auth, "host_key": "not-the-key", "participant_key": "not-a-key"}
        forged_refusal = await _refusal(live_server.base_url, forged)
        assert forged_refusal is not None
        assert forged_refusal["data"]["code"] == "passcode_required"


async def test_room_updated_never_carries_the_passcode_the_wall_may_show(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await _room(http, passcode="orchid")
        url = f"/api/rooms/{room['token']}"
        wall = LiveClient(live_server.base_url, room["token"], "Wall")
        wall.auth["host_key"] = room["host_key"]
        await wall.connect()
        try:
            passcodes = {room["passcode"]}
            for change in ({"wall_show_passcode": True}, {"passcode": "lily-pad"}):
                patched = await http.patch(url, json=change, headers=_host(room))
                assert patched.status_code == 200, patched.text
                passcodes.add(patched.json()["passcode"])
                _, update = await wall.next("room_updated")
                assert update["seq"] == patched.json()["last_seq"]
                assert update["wall_show_passcode"] is True
                assert update["passcode_required"] is True and "passcode" not in update
                assert not passcodes & set(map(str, update.values()))
            # What the wall reads instead, with its credentials: the current passcode.
            view = (await http.get(url, headers=_host(room))).json()
            assert view["passcode"] == "lily-pad"
        finally:
            await wall.close()
