"""Limits on what an upload may cost the server: a stalled body is cut off, one address has a
bounded number of uploads in progress, and the disk keeps a free-space floor (a full disk
answers 507, not 500, and loses nothing stored)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, SettingsFactory, _app_client, run_server
from tests.photos import make_image_bytes
from tests.polling import poll_until
from tests.web.test_rooms import create_room

BOUNDARY = "limitsboundary"


def _stalled_upload_head(token: str, file_bytes: int, sent_bytes: int) -> bytes:
    """A multipart upload's request head and the first ``sent_bytes`` of a ``file_bytes``
    file part: what a client sends before it stalls."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head) + file_bytes + len(tail)
    request = (
        f"POST /api/rooms/{token}/images HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    return request + head + b"\xff" * sent_bytes


async def _open_stalled(
    base_url: str, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    # 1.5 MiB of a 4 MiB file: past the in-memory spool, so the server spills it to a file.
    writer.write(_stalled_upload_head(token, 4 * 1024 * 1024, 3 * 1024 * 1024 // 2))
    await writer.drain()
    return reader, writer


def _part_files(server: LiveServer) -> list[Path]:
    # Each process spills into its own folder, uploads/<owner>/ (web/storage.py).
    return list((server.settings.data_dir / "uploads").glob("**/*.part"))


@pytest.fixture
async def stall_server(make_settings: SettingsFactory) -> AsyncIterator[LiveServer]:
    settings = make_settings(upload_idle_timeout_seconds=1, max_concurrent_uploads_per_address=2)
    async for server in run_server(settings):
        yield server


async def test_a_stalled_upload_is_refused_with_408_and_leaves_no_file(
    stall_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=stall_server.base_url, timeout=30) as http:
        token = (await http.post("/api/rooms", json={"title": "stall"})).json()["token"]
    reader, writer = await _open_stalled(stall_server.base_url, token)
    try:
        # Broken: no answer at all (docs/decisions/0016-open-uploads-per-address.md).
        async with asyncio.timeout(20):
            answer = await reader.read()  # to EOF: the server also closes the connection
    finally:
        writer.transport.abort()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "upload_timeout"
    assert _part_files(stall_server) == []


async def test_uploads_in_progress_per_address_are_capped_with_429(
    stall_server: LiveServer,
) -> None:
    photo = make_image_bytes("jpeg", size=(320, 240))
    async with httpx.AsyncClient(base_url=stall_server.base_url, timeout=30) as http:
        token = (await http.post("/api/rooms", json={"title": "cap"})).json()["token"]
        stalled = [await _open_stalled(stall_server.base_url, token) for _ in range(2)]
        try:
            await poll_until(
                lambda: len(_part_files(stall_server)) == 2, deadline=30, what="two spill files"
            )
            response = await http.post(
                f"/api/rooms/{token}/images", files={"file": ("p.jpg", photo, "image/jpeg")}
            )
            # Broken: 201, however many uploads the address already holds open.
            assert response.status_code == 429, response.text
            assert response.json()["error"]["code"] == "too_many_uploads"
            assert int(response.headers["retry-after"]) >= 1
        finally:
            for _, writer in stalled:
                writer.transport.abort()
        # the server noticed the aborts
        await poll_until(lambda: not _part_files(stall_server), deadline=30, what="no spill file")
        response = await http.post(
            f"/api/rooms/{token}/images", files={"file": ("p.jpg", photo, "image/jpeg")}
        )
        assert response.status_code == 201, response.text


async def test_an_upload_under_the_free_space_floor_is_507_and_stores_nothing(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    tmp_path.joinpath("data").mkdir()
    free = shutil.disk_usage(tmp_path).free
    settings = make_settings(min_free_disk_bytes=free + 1024**3)  # the floor is out of reach
    async for client in _app_client(settings):
        room = await create_room(client)
        response = await client.http.post(
            f"/api/rooms/{room['token']}/images",
            files={"file": ("p.jpg", make_image_bytes("jpeg", size=(320, 240)), "image/jpeg")},
        )
        # Broken: 201 (no disk guard).
        assert response.status_code == 507, response.text
        assert response.json()["error"]["code"] == "insufficient_storage"
        assert int(response.headers["retry-after"]) >= 1
        listing = await client.http.get(f"/api/rooms/{room['token']}/images")
        assert listing.json()["items"] == []


@contextlib.contextmanager
def _small_tmpfs(path: Path, megabytes: int) -> Iterator[None]:
    """A tmpfs of ``megabytes`` MiB mounted at ``path`` (the tests run as root)."""
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


async def test_a_full_disk_while_receiving_is_507_and_loses_nothing_stored(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    data = tmp_path / "small-disk"
    with _small_tmpfs(data, 20):
        settings = make_settings(
            data_dir=data, min_free_disk_bytes=0, max_upload_bytes=64 * 1024 * 1024
        )
        async for client in _app_client(settings):
            room = await create_room(client)
            photo = make_image_bytes("jpeg", size=(640, 480))
            first = await client.http.post(
                f"/api/rooms/{room['token']}/images",
                files={"file": ("p.jpg", photo, "image/jpeg")},
            )
            assert first.status_code == 201, first.text
            # 30 MB cannot fit on a 20 MB disk: the spill file's write fails with ENOSPC.
            big = os.urandom(1024) * (30 * 1024)
            response = await client.http.post(
                f"/api/rooms/{room['token']}/images",
                files={"file": (f"{uuid.uuid4().hex}.jpg", big, "image/jpeg")},
            )
            # Broken: 500 internal error.
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "insufficient_storage"
            assert list((data / "uploads").glob("**/*.part")) == []
            for url in (first.json()["url"], first.json()["thumb_url"]):
                assert (await client.http.get(url)).status_code == 200
            listing = await client.http.get(f"/api/rooms/{room['token']}/images")
            assert [item["id"] for item in listing.json()["items"]] == [first.json()["id"]]


async def test_a_full_disk_while_making_a_download_is_507_not_500(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    data = tmp_path / "small-disk"
    with _small_tmpfs(data, 20):
        settings = make_settings(data_dir=data, min_free_disk_bytes=0)
        async for client in _app_client(settings):
            room = await create_room(client)
            photo = make_image_bytes("jpeg", size=(1600, 1200))
            stored = await client.http.post(
                f"/api/rooms/{room['token']}/images",
                files={"file": ("p.jpg", photo, "image/jpeg")},
            )
            assert stored.status_code == 201, stored.text
            # Fill the disk to the last block: the full-resolution file cannot be written.
            filler = data / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as out:
                while True:
                    out.write(b"\0" * 65536)
            response = await client.http.get(
                f"/api/rooms/{room['token']}/images/{stored.json()['id']}/download"
            )
            # Broken: 500 internal_error.
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "insufficient_storage"
            filler.unlink()
            again = await client.http.get(
                f"/api/rooms/{room['token']}/images/{stored.json()['id']}/download"
            )
            assert again.status_code == 200
