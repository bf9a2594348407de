"""The wire form of a room event on the Redis bus."""

from __future__ import annotations

import asyncio
import json

from realtime.bus import RedisBus, RoomEvent
from tests.conftest import REDIS_URL


def test_room_event_json_is_compact_complete_and_round_trips() -> None:
    payload = {"id": 7, "seq": 7, "caption": 'é "q"', "tags": [1, None], "nested": {"a": [2]}}
    event = RoomEvent(3, 7, "image_added", payload)
    wire = event.to_json()
    assert wire == (
        '{"room_id":3,"seq":7,"kind":"image_added","payload":'
        '{"id":7,"seq":7,"caption":"\\u00e9 \\"q\\"","tags":[1,null],"nested":{"a":[2]}}}'
    )
    assert json.loads(wire)["payload"] == payload
    assert RoomEvent.from_json(wire) == event
    assert RoomEvent.from_json(wire.encode()) == event


async def test_other_replicas_get_an_event_before_the_publisher_delivers_it(
    redis_prefix: str,
) -> None:
    """Replica A's own delivery of an event waits until replica B has received it: this only
    ends if A sends the event to Redis before it delivers to its own clients, so that B fans
    out while A does. A's copy coming back through Redis is a second delivery, as ever."""
    publisher, other = RedisBus(REDIS_URL, redis_prefix), RedisBus(REDIS_URL, redis_prefix)
    event = RoomEvent(1, 1, "image_added", {"id": 1, "seq": 1})
    at_other: asyncio.Future[RoomEvent] = asyncio.get_running_loop().create_future()
    delivered_by_publisher: list[RoomEvent] = []

    async def deliver_at_publisher(item: RoomEvent) -> None:
        if not delivered_by_publisher:  # the local delivery, inside publish()
            assert await asyncio.wait_for(asyncio.shield(at_other), 10) == event
        delivered_by_publisher.append(item)

    async def deliver_at_other(item: RoomEvent) -> None:
        if not at_other.done():
            at_other.set_result(item)

    async def nothing_missed() -> None:
        pass

    await publisher.start(deliver_at_publisher, nothing_missed)
    await other.start(deliver_at_other, nothing_missed)
    try:
        async with asyncio.timeout(10):
            await publisher.subscribed.wait()
            await other.subscribed.wait()
        assert await publisher.publish(event) is True
        assert at_other.result() == event
        assert delivered_by_publisher[0] == event
    finally:
        await publisher.close()
        await other.close()
