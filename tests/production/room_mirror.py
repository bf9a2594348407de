"""A Socket.IO client that applies room events the way a page does, and checks the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio


class RoomMirror:
    """Mirrors one room's images from its live events, across reconnections to any replica.

    It connects with the newest ``seq`` it applied, as the browser pages do, and records the
    ``seq`` of every event each connection delivered, so tests can check what the server sent
    on each connection: each event once, in order, with no gap after the ``last_seq`` it was
    given. (Per connection, because python-socketio runs each received message in its own
    task: a message from a dying connection may be applied after the next connection began.)

    :param token: the room token.
    :param last_seq: the room's ``last_seq`` when the mirror's state was loaded (0: empty room).
    """

    def __init__(self, token: str, last_seq: int = 0) -> None:
        self.token = token
        self.last_seq = last_seq
        self.images: dict[int, dict[str, Any]] = {}
        self.streams: list[tuple[int, list[int]]] = []  # (last_seq at connect, seqs received)
        self.snapshots = 0
        self.presence: int | None = None  # the latest presence count received
        self.client: socketio.AsyncClient | None = None
        self.disconnected = asyncio.Event()
        self._changed = asyncio.Condition()

    async def connect(self, base_url: str) -> None:
        """Connect (again) to ``base_url`` with the newest applied ``seq``."""
        client = socketio.AsyncClient(reconnection=False)
        stream: list[int] = []
        self.streams.append((self.last_seq, stream))

        async def added(image: dict[str, Any]) -> None:
            stream.append(image["seq"])
            await self._apply(image["seq"], lambda: self.images.__setitem__(image["id"], image))

        async def removed(data: dict[str, Any]) -> None:
            stream.append(data["seq"])
            await self._apply(data["seq"], lambda: self.images.pop(data["id"], None))

        async def snapshot(data: dict[str, Any]) -> None:
            stream.clear()
            self.streams[-1] = (data["seq"], stream)
            await self._snapshot(data)

        client.on("image_added", added)
        client.on("image_removed", removed)
        client.on("snapshot", snapshot)
        client.on("presence", self._presence)
        client.on("disconnect", self._on_disconnect)
        self.disconnected.clear()
        await client.connect(
            base_url,
            auth={"token": self.token, "name": "mirror", "last_seq": self.last_seq},
            transports=["websocket"],
            wait_timeout=10,
        )
        self.client = client

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnected.set()

    async def _apply(self, seq: int, change: Callable[[], None]) -> None:
        if seq > self.last_seq:
            change()
            self.last_seq = seq
        async with self._changed:
            self._changed.notify_all()

    async def _presence(self, data: dict[str, Any]) -> None:
        self.presence = data["count"]
        async with self._changed:
            self._changed.notify_all()

    async def _snapshot(self, data: dict[str, Any]) -> None:
        self.snapshots += 1
        self.images = {image["id"]: image for image in data["images"]}
        self.last_seq = data["seq"]
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[RoomMirror], bool], timeout: float = 30
    ) -> None:
        """Wait until ``predicate(self)`` holds; TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    @property
    def received_seqs(self) -> list[int]:
        """Every connection's received seqs, concatenated."""
        return [seq for _, stream in self.streams for seq in stream]

    def assert_stream_exact(self, first_seq: int) -> None:
        """Each connection delivered the events after the ``seq`` it connected with (or after
        its snapshot) once each, in order, with no gap; the first started at ``first_seq``."""
        assert self.streams and self.streams[0][0] == first_seq - 1
        for start, stream in self.streams:
            expected = list(range(start + 1, start + 1 + len(stream)))
            assert stream == expected, f"connected after seq {start}, received {stream}"

    async def close(self) -> None:
        """Disconnect if connected."""
        if self.client is not None and self.client.connected:
            await self.client.disconnect()
