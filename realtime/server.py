"""The Socket.IO server and the delivery of room events to its clients."""

from __future__ import annotations

import logging

import socketio

from realtime.bus import RoomEvent
from realtime.namespace import ResolveRoom, RoomNamespace
from realtime.rooms import room_name

logger = logging.getLogger(__name__)


def create_socketio_server(
    resolve_room: ResolveRoom, *, ping_interval: float = 25, ping_timeout: float = 20
) -> socketio.AsyncServer:
    """A Socket.IO server (Engine.IO v4 / Socket.IO v5) with the room namespace registered.

    :param resolve_room: token lookup for the namespace's connect handler.
    :param ping_interval: heartbeat interval, seconds (socket.io's default is 25).
    :param ping_timeout: seconds to wait for a heartbeat answer (socket.io's default is 20).

    Same-origin pages need no CORS; other origins are refused (``cors_allowed_origins=[]``
    means no cross-origin browser pages, while non-browser clients are unaffected).
    """
    server = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins=[],
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
    )
    server.register_namespace(RoomNamespace(resolve_room))
    return server


class LiveDelivery:
    """Emits bus events to this replica's clients of the event's room.

    :param server: this replica's Socket.IO server.
    """

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server

    async def deliver(self, event: RoomEvent) -> None:
        """Emit ``event`` to its room's clients on this replica."""
        await self.server.emit(event.kind, event.payload, room=room_name(event.room_id))

    async def resync(self) -> None:
        """Called when the bus may have missed events (nothing to do in-process)."""
