"""Room-wide presence over Redis: totals summed over replicas, dead replicas swept out, counts
restored after Redis loses its keys, and local counts while Redis is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from realtime.presence import LocalPresence, RedisPresence
from tests.conftest import REDIS_URL
from tests.production.processes import free_port

ROOM, OTHER_ROOM = 7, 8


class Replica:
    """A replica's clients as presence sees them, and the totals it was told, per room."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.totals: dict[int, int] = {}
        self.changed = asyncio.Condition()

    def local_count(self, room_id: int) -> int:
        return self.counts.get(room_id, 0)

    def local_rooms(self) -> list[int]:
        return [room for room, count in self.counts.items() if count > 0]

    async def counted(self, room_id: int, total: int) -> None:
        async with self.changed:
            self.totals[room_id] = total
            self.changed.notify_all()

    async def wait_total(self, room_id: int, expected: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: self.totals.get(room_id) == expected)


async def set_count(presence: RedisPresence | LocalPresence, replica: Replica, count: int) -> None:
    replica.counts[ROOM] = count
    await presence.changed(ROOM)


@pytest.fixture
async def started(redis_prefix: str) -> AsyncIterator[Callable]:
    """Starts RedisPresence instances on the test's prefix (ttl 60 s: heartbeats never expire
    by themselves during a test); closes whatever is still open at the end."""
    opened: list[RedisPresence] = []

    async def start(url: str = REDIS_URL) -> tuple[RedisPresence, Replica]:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        presence, replica = RedisPresence(client, redis_prefix, ttl=60), Replica()
        await presence.start(replica, replica.counted)
        opened.append(presence)
        if url == REDIS_URL:
            await asyncio.wait_for(presence.reachable.wait(), 10)
        return presence, replica

    yield start
    for presence in opened:
        await presence.close()  # a second close does nothing
        await presence.client.aclose()


async def test_each_replica_receives_the_sum_over_replicas(started: Callable) -> None:
    a, on_a = await started()
    b, on_b = await started()
    await set_count(a, on_a, 2)
    await set_count(b, on_b, 3)
    await on_a.wait_total(ROOM, 5)
    await on_b.wait_total(ROOM, 5)
    await set_count(b, on_b, 1)
    await on_a.wait_total(ROOM, 3)
    await on_b.wait_total(ROOM, 3)
    assert OTHER_ROOM not in on_a.totals  # a room without clients here is not reported here


async def test_closing_a_replica_withdraws_its_counts(started: Callable) -> None:
    a, on_a = await started()
    b, on_b = await started()
    await set_count(a, on_a, 4)
    await set_count(b, on_b, 6)
    await on_a.wait_total(ROOM, 10)
    await b.close()
    await on_a.wait_total(ROOM, 4)
    assert b.replica_id not in await _replica_ids(a)


async def test_a_dead_replicas_counts_are_swept_by_a_live_one(
    started: Callable, redis_prefix: str
) -> None:
    a, on_a = await started()
    await set_count(a, on_a, 2)
    await on_a.wait_total(ROOM, 2)
    # A replica that was killed: its count and registration stay, its heartbeat has expired.
    async with aioredis.Redis.from_url(REDIS_URL) as raw:
        await raw.hset(f"{redis_prefix}:presence:{ROOM}", "dead", 5)
        await raw.sadd(f"{redis_prefix}:replica-rooms:dead", ROOM)
        await raw.sadd(f"{redis_prefix}:replicas", "dead")
    await set_count(a, on_a, 3)
    await on_a.wait_total(ROOM, 8)  # the dead replica still counts until a heartbeat sweeps it
    await a.heartbeat()
    await on_a.wait_total(ROOM, 3)
    assert await _replica_ids(a) == {a.replica_id}


async def test_counts_come_back_after_redis_loses_its_keys(
    started: Callable, redis_prefix: str
) -> None:
    a, on_a = await started()
    b, on_b = await started()
    await set_count(a, on_a, 2)
    await set_count(b, on_b, 3)
    await on_b.wait_total(ROOM, 5)
    async with aioredis.Redis.from_url(REDIS_URL) as raw:  # as a restarted Redis would be
        keys = [key async for key in raw.scan_iter(match=f"{redis_prefix}:*")]
        await raw.delete(*keys)
    await a.heartbeat()  # finds its heartbeat gone: registers and reports again
    await on_b.wait_total(ROOM, 2)
    await b.heartbeat()
    await on_a.wait_total(ROOM, 5)
    await on_b.wait_total(ROOM, 5)
    assert await _replica_ids(a) == {a.replica_id, b.replica_id}


async def test_unreachable_redis_counts_this_replica_only(started: Callable) -> None:
    a, on_a = await started(f"redis://127.0.0.1:{free_port()}/0")
    await set_count(a, on_a, 3)
    await on_a.wait_total(ROOM, 3)
    assert not a.reachable.is_set()  # the total came without Redis: this replica's own count
    assert on_a.totals == {ROOM: 3}


async def test_embedded_presence_reports_the_local_count() -> None:
    presence, replica = LocalPresence(), Replica()
    await presence.start(replica, replica.counted)
    await set_count(presence, replica, 4)
    assert replica.totals == {ROOM: 4}


async def _replica_ids(presence: RedisPresence) -> set[str]:
    members = await presence.client.smembers(f"{presence.channel.rsplit(':', 1)[0]}:replicas")
    return {member.decode() for member in members}
