"""A real server process killed (SIGKILL, its whole process group) in the middle of uploads, and
started again on the same data folder and database: nothing half-stored survives the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.photos import make_image_bytes
from tests.production.crash_server import CRASH_POINT, SPILLED
from tests.production.processes import Replica, running
from web.uploads import SPOOL_BYTES

pytestmark = pytest.mark.xdist_group("replicas")

CRASHES = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment selecting each database in turn: SQLite in the data folder (migrated
    at start), then the run's PostgreSQL database (migrated already)."""
    if request.param == "postgresql":
        return {
            "DATABASE_URL": request.getfixturevalue("pg_database_url"),
            "IMAGESHARK_MIGRATE_ON_START": "false",
        }
    return {}


def photo(index: int) -> bytes:
    return make_image_bytes("jpeg", name="coffee", size=(300 + index, 200))


def leftover_bytes(data_dir: Path) -> int:
    """Bytes of every file under ``uploads/`` and ``staging/`` (unfinished uploads)."""
    return sum(
        path.stat().st_size
        for area in ("uploads", "staging")
        for path in (data_dir / area).rglob("*")
        if path.is_file()
    )


async def slow_upload(base_url: str, token: str, sent: asyncio.Event) -> None:
    """An upload whose body (over the in-memory limit, so it is spilled to a file) stops
    half-way and never ends."""
    boundary = "CrashBoundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head + b"\xff" * (2 * SPOOL_BYTES)
        sent.set()
        await asyncio.Event().wait()

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await http.post(
            f"/api/rooms/{token}/images",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )


async def crash_during_uploads(
    env: dict[str, str], room: dict[str, Any] | None, index: int
) -> dict[str, Any]:
    """Start a server whose uploads stop between commit and rename, create ``room`` if None,
    upload photo ``index`` and a spilled body that never ends, and SIGKILL the process group
    once the photo's row is committed and the body's file is on disk."""
    server = Replica("crashing", env, module="tests.production.crash_server")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            if room is None:
                response = await http.post("/api/rooms", json={"title": "crashes"})
                assert response.status_code == 201, response.text
                room = response.json()
            token = room["token"]
            sent = asyncio.Event()
            photo_upload = asyncio.create_task(
                http.post(f"/api/rooms/{token}/images", files={"file": ("p.jpg", photo(index))})
            )
            # Its body never ends, so its request never notices the kill: cancelled after it.
            body_upload = asyncio.create_task(slow_upload(server.base_url, token, sent))
            await server.wait_for_line(CRASH_POINT)
            await sent.wait()
            await server.wait_for_line(SPILLED)
            await server.kill()
            body_upload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body_upload
            # The kill closes the photo's connection: its request ends with an error.
            with pytest.raises(httpx.TransportError):
                async with asyncio.timeout(30):
                    await photo_upload
    finally:
        await server.kill()
    return room


async def test_crash_between_commit_and_rename_leaves_no_broken_image(
    database_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **database_env,
        "IMAGESHARK_DATA_DIR": str(tmp_path),
        "IMAGESHARK_RENDITION_WORKERS": "1",
        "IMAGESHARK_LOG_LEVEL": "INFO",
    }
    room: dict[str, Any] | None = None
    orphaned: list[int] = []
    for index in range(CRASHES):
        room = await crash_during_uploads(env, room, index)
        # Each start-up may finish the crashes before it: what this crash left, measured now.
        orphaned.append(leftover_bytes(tmp_path))
    assert room is not None
    token, host = room["token"], {"Authorization": f"Bearer {room['host_key']}"}
    # The spilled body's file and the photo's staged files are left behind at each crash.
    assert min(orphaned) > SPOOL_BYTES, orphaned

    server = Replica("restarted", env)
    async with running(server), httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        left = leftover_bytes(tmp_path)
        listed = (await http.get(f"/api/rooms/{token}/images")).json()["items"]
        broken = []
        for image in listed:
            original = f"/api/rooms/{token}/images/{image['id']}/original"
            for url in (image["url"], image["thumb_url"], original):
                if (await http.get(url, headers=host)).status_code != 200:
                    broken.append(url)
        print(f"{len(listed)} listed, {len(broken)} files not answering 200, {left} bytes left")
        assert left == 0, "start-up recovery left unfinished uploads"
        assert broken == []
        events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
        added = {event["payload"]["id"] for event in events if event["kind"] == "image_added"}
        removed = {event["payload"]["id"] for event in events if event["kind"] == "image_removed"}
        assert len(added) == CRASHES
        assert added - removed == {image["id"] for image in listed}
        # Every crashed upload was committed, and its staged files were durable: all finished.
        assert len(listed) == CRASHES

        for index in range(CRASHES):
            again = await http.post(
                f"/api/rooms/{token}/images", files={"file": ("p.jpg", photo(index))}
            )
            assert again.status_code in (200, 201), again.text
            image = again.json()
            original = f"/api/rooms/{token}/images/{image['id']}/original"
            for url in (image["url"], image["thumb_url"], original):
                assert (await http.get(url, headers=host)).status_code == 200, url
    print(f"after {CRASHES} crashes: {orphaned} bytes left after each crash, 0 after restart")
