"""Room-wide presence: how many clients a room has, counted over every replica.

Embedded (one process), :class:`LocalPresence`: the room's count is this process's.

With Redis, :class:`RedisPresence`. Every replica keeps, under the deployment's prefix:

- ``presence:<room id>``, a hash: one field per replica with clients in the room, its value
  that replica's client count;
- ``replica:<replica id>``, a heartbeat key that expires after ``ttl`` seconds, refreshed every
  third of that;
- ``replica-rooms:<replica id>``, the set of rooms where the replica has a field, and
  ``replicas``, the set of replica ids, so that the fields of a dead replica can be found.

A change is reported by a Lua script that sets the replica's field, sums the hash and
publishes ``<room id>:<total>`` on the ``presence`` channel in one atomic step. Redis runs
scripts one at a time and delivers a channel's messages in publish order, so every replica
receives the totals in the order they were made and the last one it receives is the room's
count. Reports are made by one task per replica that always sends the count as it is when it
sends it, so a replica's reports cannot overtake one another either.

A replica that dies without cleaning up (SIGKILL, a lost node) stops refreshing its heartbeat;
at most ``ttl`` seconds plus a heartbeat period later another replica removes its fields and
publishes the new totals. A replica that finds its own heartbeat gone (Redis restarted and lost
its keys, or the replica stalled and was swept) registers again and reports every room again.
While Redis is unreachable, each replica reports its own clients only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from realtime.bus import listen_forever

logger = logging.getLogger(__name__)


class LocalClients(Protocol):
    """This replica's clients, as the live side tracks them."""

    def local_count(self, room_id: int) -> int:
        """Clients of ``room_id`` connected to this replica."""

    def local_rooms(self) -> Iterable[int]:
        """The rooms with at least one client on this replica."""


OnCount = Callable[[int, int], Awaitable[None]]
"""Called with ``(room_id, total)`` when a room's count over all replicas is known to change."""


class Presence(Protocol):
    """What the live side needs to count a room's clients over every replica."""

    async def start(self, clients: LocalClients, on_count: OnCount) -> None:
        """Begin counting: ``clients`` tells this replica's counts, ``on_count`` receives
        room totals (only for rooms with clients on this replica)."""

    async def changed(self, room_id: int) -> None:
        """This replica's count for ``room_id`` changed; ``on_count`` follows (soon)."""

    async def close(self) -> None:
        """Stop; withdraw this replica's counts where others can see them."""


class LocalPresence:
    """The embedded default: one process holds every client, its counts are the totals."""

    def __init__(self) -> None:
        self._clients: LocalClients | None = None
        self._on_count: OnCount | None = None

    async def start(self, clients: LocalClients, on_count: OnCount) -> None:
        self._clients, self._on_count = clients, on_count

    async def changed(self, room_id: int) -> None:
        if self._clients is not None and self._on_count is not None:
            await self._on_count(room_id, self._clients.local_count(room_id))

    async def close(self) -> None:
        self._on_count = None


# KEYS: the room's hash, this replica's room set.
# ARGV: replica id, room id, this replica's count, channel.
_REPORT = """
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
local total = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(value) end
redis.call('PUBLISH', ARGV[4], ARGV[2] .. ':' .. total)
return total
"""

# KEYS: the replica's room set, the replica set, the replica's heartbeat.
# ARGV: replica id, room hash key prefix, channel, "1" to withdraw even if its heartbeat is alive.
# Returns the number of rooms withdrawn, or -1 if the replica is alive after all.
_WITHDRAW = """
if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local rooms = redis.call('SMEMBERS', KEYS[1])
for _, room in ipairs(rooms) do
  local key = ARGV[2] .. room
  if redis.call('HDEL', key, ARGV[1]) == 1 then
    local total = 0
    for _, value in ipairs(redis.call('HVALS', key)) do total = total + tonumber(value) end
    redis.call('PUBLISH', ARGV[3], room .. ':' .. total)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[4] == '1' then redis.call('DEL', KEYS[3]) end
return #rooms
"""


class RedisPresence:
    """Room counts summed over every replica through Redis (see the module docstring).

    :param client: a Redis client (:func:`realtime.bus.redis_client`, shared with the event
        bus's connection pool; the caller closes it, after :meth:`close`).
    :param prefix: key and channel prefix (one per deployment, or per test).
    :param ttl: seconds, > 0: a replica whose heartbeat is this old no longer counts; the
        heartbeat is refreshed every ``ttl / 3`` seconds.
    :param replica_id: this replica's id (default: a new random one per process).

    :attr:`reachable` is set while Redis answers and this replica is registered and
    subscribed; while it is clear, counts are this replica's own.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, ttl: float = 15.0, replica_id: str | None = None
    ) -> None:
        self.replica_id = replica_id or uuid.uuid4().hex
        self.ttl = ttl
        self.channel = f"{prefix}:presence"
        self._room_key = f"{prefix}:presence:"
        self._replicas_key = f"{prefix}:replicas"
        self._heartbeat_prefix = f"{prefix}:replica:"
        self._rooms_prefix = f"{prefix}:replica-rooms:"
        self.client = client
        self._report = self.client.register_script(_REPORT)
        self._withdraw = self.client.register_script(_WITHDRAW)
        self._clients: LocalClients | None = None
        self._on_count: OnCount | None = None
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self.reachable = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self, clients: LocalClients, on_count: OnCount) -> None:
        self._clients, self._on_count = clients, on_count
        self._tasks = [
            asyncio.create_task(self._listen(), name="presence-listener"),
            asyncio.create_task(self._send_reports(), name="presence-reports"),
            asyncio.create_task(self._beat(), name="presence-heartbeat"),
        ]

    async def changed(self, room_id: int) -> None:
        self._dirty.add(room_id)
        self._wake.set()
        if not self.reachable.is_set():
            await self._count_locally([room_id])

    def _local_count(self, room_id: int) -> int:
        return self._clients.local_count(room_id) if self._clients is not None else 0

    async def _count_locally(self, rooms: Iterable[int]) -> None:
        if self._on_count is not None:
            for room_id in rooms:
                await self._on_count(room_id, self._local_count(room_id))

    def _heartbeat_key(self, replica_id: str) -> str:
        return self._heartbeat_prefix + replica_id

    def _rooms_key(self, replica_id: str) -> str:
        return self._rooms_prefix + replica_id

    async def _listen(self) -> None:
        async def subscribed() -> None:
            # Totals published while unsubscribed were missed: report every room again, which
            # publishes their totals afresh.
            await self.heartbeat()
            if self._clients is not None:
                self._dirty.update(self._clients.local_rooms())
                self._wake.set()
            self.reachable.set()

        async def received(data: bytes) -> None:
            try:
                room, total = (int(part) for part in data.split(b":"))
            except ValueError:
                logger.error("dropping malformed presence message %r", data[:100])
                return
            if self._on_count is not None and self._local_count(room) > 0:
                await self._on_count(room, total)

        await listen_forever(
            self.client, self.channel, subscribed, received, lost=self.reachable.clear
        )

    async def _send_reports(self) -> None:
        while True:
            await self._wake.wait()
            await self.reachable.wait()
            self._wake.clear()
            rooms, self._dirty = self._dirty, set()
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for room_id in rooms:
                        await self._report(
                            keys=[self._room_key + str(room_id), self._rooms_key(self.replica_id)],
                            args=[
                                self.replica_id,
                                room_id,
                                self._local_count(room_id),
                                self.channel,
                            ],
                            client=pipe,
                        )
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("presence report failed (%s); counting this replica only", exc)
                self._dirty |= rooms
                self._wake.set()
                self.reachable.clear()
                await self._count_locally(rooms)

    async def heartbeat(self) -> None:
        """Refresh this replica's heartbeat, re-report every room if it had vanished (Redis
        lost its keys, or this replica was swept as dead), and withdraw the counts of replicas
        whose heartbeat has expired. Raises RedisError/OSError if Redis is unreachable."""
        previous = await self.client.set(
            self._heartbeat_key(self.replica_id), b"1", px=int(self.ttl * 1000), get=True
        )
        if previous is None:
            await self.client.sadd(self._replicas_key, self.replica_id)
            if self._clients is not None:
                self._dirty.update(self._clients.local_rooms())
            self._wake.set()
        for member in await self.client.smembers(self._replicas_key):
            other = member.decode() if isinstance(member, bytes) else member
            if other != self.replica_id:
                # The script withdraws nothing if the replica's heartbeat is alive.
                await self._withdraw_replica(other, force=False)

    async def _withdraw_replica(self, replica_id: str, *, force: bool) -> int:
        return int(
            await self._withdraw(
                keys=[
                    self._rooms_key(replica_id),
                    self._replicas_key,
                    self._heartbeat_key(replica_id),
                ],
                args=[replica_id, self._room_key, self.channel, "1" if force else "0"],
            )
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.heartbeat()
            except (RedisError, OSError) as exc:
                logger.warning("presence heartbeat failed: %s", exc)
            else:
                self.reachable.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with asyncio.timeout(2):
                await self._withdraw_replica(self.replica_id, force=True)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("could not withdraw presence counts at shutdown: %s", exc)
