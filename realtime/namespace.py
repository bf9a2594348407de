"""The live side's one namespace: clients join their room by token and receive its events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from realtime.rooms import room_name

logger = logging.getLogger(__name__)

# Returns the room id for a live room token, or None for an unknown/expired/malformed one.
ResolveRoom = Callable[[str], Awaitable[int | None]]
MAX_NAME_CHARS = 60


class RoomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Namespace ``/``: authenticates a connection by room token and places it in that room.

    A client connects with ``auth={"token": <room token>, "name": <display name>}``. An unknown,
    expired or malformed token refuses the connection with a ``connect_error`` saying why. The
    client is only ever in its own room, so it only receives that room's events.

    :param resolve_room: looks a token up (database), see :data:`ResolveRoom`.
    """

    def __init__(self, resolve_room: ResolveRoom) -> None:
        super().__init__("/")
        self.resolve_room = resolve_room

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        """Admit the client to its room, or refuse with ConnectionRefusedError."""
        if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
            raise socketio.exceptions.ConnectionRefusedError(
                "auth must be an object with the room's token: {token, name}"
            )
        room_id = await self.resolve_room(auth["token"])
        if room_id is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "room not found: the token is unknown or the room has expired"
            )
        name = auth.get("name")
        name = " ".join(name.split())[:MAX_NAME_CHARS] if isinstance(name, str) else ""
        await self.save_session(sid, {"room_id": room_id, "name": name})
        await self.enter_room(sid, room_name(room_id))
        await self.emit_presence(room_id)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """Tell the room's other clients the new head count."""
        session = await self.get_session(sid)
        room_id = session.get("room_id")
        if room_id is not None:
            await self.leave_room(sid, room_name(room_id))
            await self.emit_presence(room_id)

    async def emit_presence(self, room_id: int) -> None:
        """Send ``presence {"count": n}`` to the room: n clients connected to this replica."""
        count = sum(1 for _ in self.server.manager.get_participants("/", room_name(room_id)))
        await self.emit("presence", {"count": count}, room=room_name(room_id))
