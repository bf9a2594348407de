"""The Socket.IO CONNECT acknowledgement is the first Socket.IO packet a client receives: some
clients (socket.io-client-swift) drop events that precede it."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from tests.photos import make_image_bytes
from tests.realtime.raw_engineio import RawSession, create_room


async def _first_frames(session: RawSession, *wanted: str) -> list[str]:
    """Frames in order until one starting with each of ``wanted`` has been received."""
    frames: list[str] = []
    while not all(any(frame.startswith(prefix) for frame in frames) for prefix in wanted):
        frames.append(await session.next_frame())
    return frames


async def test_connect_ack_precedes_presence(live_server: LiveServer) -> None:
    room = await create_room(live_server.base_url)
    session = await RawSession.open(live_server.base_url)
    try:
        await session.connect_room({"token": room["token"], "name": "swift"})
        frames = await _first_frames(session, "40{", '42["presence"')
    finally:
        await session.close()
    socketio_packets = [frame for frame in frames if frame.startswith("4")]
    assert socketio_packets[0].startswith('40{"sid":'), frames


async def test_connect_ack_precedes_replayed_events(live_server: LiveServer) -> None:
    room = await create_room(live_server.base_url)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        uploaded = await http.post(
            f"/api/rooms/{room['token']}/images",
            files={"file": ("p.jpg", make_image_bytes("jpeg"), "image/jpeg")},
        )
        assert uploaded.status_code == 201, uploaded.text
    session = await RawSession.open(live_server.base_url)
    try:
        await session.connect_room({"token": room["token"], "name": "swift", "last_seq": 0})
        frames = await _first_frames(session, "40{", '42["image_added"', '42["presence"')
    finally:
        await session.close()
    socketio_packets = [frame for frame in frames if frame.startswith("4")]
    assert socketio_packets[0].startswith('40{"sid":'), frames
