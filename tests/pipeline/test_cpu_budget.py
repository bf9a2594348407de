"""CPU bombs over HTTP: a room's costly uploads must not hold up another room's photos.

A real server (uvicorn on a loopback port, two rendition workers) and real files: 16-bit RGBA
PNGs of 64 megapixels, 0.5 MB each, that cost seconds of worker time each to decode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.photos import make_image_bytes
from tests.pipeline.bombs import png_bomb

BOMBS = 4


@pytest.fixture
async def two_worker_server(make_settings: SettingsFactory) -> AsyncIterator[LiveServer]:
    # Workers warm before the timed uploads, as in a running service.
    async for server in run_server(make_settings(rendition_workers=2), renditions_on_demand=False):
        yield server


async def new_room(http: httpx.AsyncClient, title: str) -> str:
    response = await http.post("/api/rooms", json={"title": title})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def post_image(http: httpx.AsyncClient, token: str, data: bytes, name: str) -> httpx.Response:
    return await http.post(f"/api/rooms/{token}/images", files={"file": (name, data, "image/png")})


async def test_a_rooms_png_bombs_do_not_delay_another_rooms_upload(
    two_worker_server: LiveServer,
) -> None:
    bombs = [png_bomb(8000, 8000, tag=f"bomb {n}") for n in range(BOMBS)]
    assert all(len(bomb) < 1_000_000 for bomb in bombs)
    photos = [make_image_bytes("jpeg", size=(32 + n, 24)) for n in range(3)]
    assert all(len(photo) < 2048 for photo in photos)
    async with httpx.AsyncClient(base_url=two_worker_server.base_url, timeout=120) as http:
        room_a = await new_room(http, "A")
        room_b = await new_room(http, "B")
        sent = [
            asyncio.create_task(post_image(http, room_a, bomb, f"bomb{n}.png"))
            for n, bomb in enumerate(bombs)
        ]
        # One after another, so that the later ones surely find the bombs queued or running.
        latencies = []
        for n, photo in enumerate(photos):
            started = time.perf_counter()
            response = await post_image(http, room_b, photo, f"small{n}.jpg")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
        answers = await asyncio.gather(*sent)
    assert max(latencies) < 1.0, f"room B's 1 KB uploads took {latencies} s"
    for answer in answers:
        assert answer.status_code == 413, answer.text
        error = answer.json()["error"]
        assert error["code"] == "image_too_large"
        assert "16 bits" in error["message"]
