"""A python-socketio AsyncClient that records the room events it receives, for tests."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio


class LiveClient:
    """One Socket.IO connection to a room, with every received event queued in order.

    :param base_url: the server, e.g. ``http://127.0.0.1:1234``.
    :param token: the room token to join with.
    :param name: the display name.
    """

    EVENTS = (
        "image_added",
        "image_removed",
        "presence",
        "snapshot",
        "resync_required",
        "room_updated",
        "room_closed",
        "moderation_queue",
    )

    def __init__(
        self, base_url: str, token: str, name: str = "tester", last_seq: int | None = None
    ) -> None:
        self.base_url = base_url
        self.auth: dict[str, Any] = {"token": token, "name": name}
        if last_seq is not None:
            self.auth["last_seq"] = last_seq
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for event in self.EVENTS:
            self.client.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(data: Any) -> None:
            await self.received.put((event, data))

        return record

    async def connect(self, transport: str = "websocket") -> None:
        """Connect; raises socketio.exceptions.ConnectionError if refused."""
        await self.client.connect(
            self.base_url, auth=self.auth, transports=[transport], wait_timeout=10
        )

    async def next(self, *kinds: str, timeout: float = 10) -> tuple[str, Any]:
        """The next received event of one of ``kinds`` (others are passed over)."""
        async with asyncio.timeout(timeout):
            while True:
                event, data = await self.received.get()
                if not kinds or event in kinds:
                    return event, data

    async def close(self) -> None:
        """Disconnect."""
        await self.client.disconnect()
