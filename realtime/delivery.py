"""Delivery of room events to this replica's clients: in order, once, with no gaps.

Every room event has a per-room sequence number (``seq``) assigned in the database transaction
that made the change, so the database's event log is the truth and the bus (Redis pub/sub,
which delivers at most once and drops what it publishes while a subscriber is away) is only a
fast path. This module closes the gaps:

- **Per room, per replica**: :class:`LiveDelivery` remembers the last ``seq`` it emitted for
  each room that has clients here. An event at or below it is a duplicate and is dropped; an
  event beyond the next one means the bus lost some, and the missing range is read from the
  log and emitted first. After the bus reconnects (and every few seconds, in case an event
  was lost with nothing after it) each room is caught up from the log.
- **Per client**: a client connects with the last ``seq`` it applied. It is placed in the room
  at once, but live events for it are held in a buffer while the events it missed are replayed
  from the log; then the buffer is flushed, skipping what the replay already sent. The seam
  therefore has no gap and no duplicate. A client too far behind gets one ``snapshot`` (the
  room's whole image list and the ``seq`` it reflects) instead of a long replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import socketio

from realtime.rooms import room_name
from web.event_log import RoomEvent

logger = logging.getLogger(__name__)

REPLAY_LIMIT = 500
"""Largest number of missed events replayed one by one; further behind gets a snapshot."""


class RoomLog(Protocol):
    """Read access to the per-room event log (implemented over the database)."""

    async def events_after(self, room_id: int, after_seq: int, limit: int) -> list[RoomEvent]:
        """Up to ``limit`` events with ``seq > after_seq``, ascending."""

    async def snapshot(self, room_id: int) -> tuple[int, list[dict[str, Any]]]:
        """``(seq, images)``: the room's image objects (ascending id), all events up to ``seq``
        reflected in them (events after ``seq`` may be too: applying them again is harmless)."""

    async def last_seqs(self, room_ids: list[int]) -> dict[int, int]:
        """The newest ``seq`` of each room that exists."""


@dataclass
class _Room:
    delivered: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    syncing: dict[str, list[RoomEvent]] = field(default_factory=dict)
    # Clients whose replay got ahead of this replica's live delivery (it read events from the
    # log that are committed but not yet delivered here): the seq they already have.
    ahead: dict[str, int] = field(default_factory=dict)
    clients: set[str] = field(default_factory=set)


class LiveDelivery:
    """Emits room events to this replica's Socket.IO clients exactly once and in ``seq`` order.

    :param server: this replica's Socket.IO server.
    :param log: the event log.
    :param replay_limit: events replayed one by one before a snapshot is sent instead.
    """

    def __init__(
        self, server: socketio.AsyncServer, log: RoomLog, replay_limit: int = REPLAY_LIMIT
    ) -> None:
        self.server = server
        self.log = log
        self.replay_limit = replay_limit
        self.rooms: dict[int, _Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- clients -------------------------------------------------------------------------

    async def join(self, sid: str, room_id: int, room_seq: int, last_seq: int | None) -> None:
        """Place ``sid`` in the room and start replaying what it missed.

        :param room_seq: the room's ``last_seq`` as just read (starts tracking a new room).
        :param last_seq: the newest ``seq`` the client applied; None: it wants live events
            only (it loads the current state itself).
        """
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = _Room(delivered=room_seq)
        room.clients.add(sid)
        room.syncing[sid] = []
        await self.server.enter_room(sid, room_name(room_id))
        task = asyncio.create_task(self._sync_client(sid, room_id, room, last_seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def leave(self, sid: str, room_id: int) -> None:
        """Forget ``sid``; stop tracking the room when its last local client leaves."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.clients.discard(sid)
        room.syncing.pop(sid, None)
        room.ahead.pop(sid, None)
        if not room.clients:
            del self.rooms[room_id]

    def local_count(self, room_id: int) -> int:
        """Clients of ``room_id`` connected to this replica."""
        room = self.rooms.get(room_id)
        return len(room.clients) if room else 0

    def local_rooms(self) -> list[int]:
        """The rooms with at least one client connected to this replica."""
        return list(self.rooms)

    async def _sync_client(self, sid: str, room_id: int, room: _Room, last_seq: int | None) -> None:
        buffer = room.syncing.get(sid)
        if buffer is None:
            return
        sent = last_seq if last_seq is not None else -1
        try:
            if last_seq is not None:
                sent = await self._replay(sid, room_id, last_seq)
        except Exception:
            logger.exception("replay to %s failed; it will catch up through seq gaps", sid)
            await self.server.emit("resync_required", {}, to=sid)
        # Flush what arrived live during the replay. No await between the emptiness check and
        # the removal below, so no event can slip in between.
        while True:
            if not buffer:
                room.syncing.pop(sid, None)
                if sent > room.delivered and sid in room.clients:
                    room.ahead[sid] = sent
                return
            event = buffer.pop(0)
            if event.seq > sent:
                await self.server.emit(event.kind, event.payload, to=sid)
                sent = event.seq

    async def _replay(self, sid: str, room_id: int, last_seq: int) -> int:
        missed = await self.log.events_after(room_id, last_seq, self.replay_limit + 1)
        too_far = len(missed) > self.replay_limit
        if not too_far and last_seq > 0 and not missed:
            # Nothing missed, or a seq from the future (another deployment's): check which.
            current = (await self.log.last_seqs([room_id])).get(room_id, 0)
            too_far = last_seq > current
        if too_far:
            seq, images = await self.log.snapshot(room_id)
            await self.server.emit("snapshot", {"seq": seq, "images": images}, to=sid)
            return seq
        for event in missed:
            await self.server.emit(event.kind, event.payload, to=sid)
        return missed[-1].seq if missed else last_seq

    # ---- events --------------------------------------------------------------------------

    async def deliver(self, event: RoomEvent) -> None:
        """Emit ``event`` to the room's local clients, once, after any missing earlier ones."""
        room = self.rooms.get(event.room_id)
        if room is None:
            return
        async with room.lock:
            if event.seq <= room.delivered:
                return
            pending = [event]
            if event.seq > room.delivered + 1:
                try:
                    pending = await self.log.events_after(
                        event.room_id, room.delivered, event.seq - room.delivered
                    )
                except Exception:
                    logger.exception("could not fill seq gap before %s; clients will", event.seq)
                    pending = [event]
            for item in pending:
                try:
                    await self._emit_to_room(event.room_id, room, item)
                finally:
                    # Emitted to whoever could take it: a later gap fill must not repeat it.
                    room.delivered = item.seq

    async def _emit_to_room(self, room_id: int, room: _Room, event: RoomEvent) -> None:
        for buffer in room.syncing.values():
            buffer.append(event)
        skip = list(room.syncing)
        if room.ahead:
            skip += [sid for sid, seq in room.ahead.items() if seq >= event.seq]
            room.ahead = {sid: seq for sid, seq in room.ahead.items() if seq > event.seq}
        await self.server.emit(
            event.kind, event.payload, room=room_name(room_id), skip_sid=skip or None
        )

    async def catch_up(self) -> None:
        """Emit every logged event this replica has not delivered yet, for every local room.

        Called when the bus (re)subscribes and periodically: Redis pub/sub loses what it
        publishes while a subscriber is away, and a lost last event has no successor to reveal
        the gap.
        """
        room_ids = list(self.rooms)
        if not room_ids:
            return
        current = await self.log.last_seqs(room_ids)
        for room_id, seq in current.items():
            room = self.rooms.get(room_id)
            if room is None or seq <= room.delivered:
                continue
            async with room.lock:
                missing = await self.log.events_after(room_id, room.delivered, seq - room.delivered)
                for item in missing:
                    if item.seq > room.delivered:
                        try:
                            await self._emit_to_room(room_id, room, item)
                        finally:
                            room.delivered = item.seq

    async def close(self) -> None:
        """Cancel replays in flight."""
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
