"""The wire form of a room event on the Redis bus."""

from __future__ import annotations

import json

from web.event_log import RoomEvent


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
