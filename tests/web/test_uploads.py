"""Receiving a multipart body: kept in memory when small, spilled to disk when large."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from web.errors import ApiError
from web.uploads import receive_upload

BOUNDARY = "ImageSharkTestBoundary"
SPOOL = 256 * 1024


def multipart(data: bytes, caption: str = "") -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="caption"\r\n\r\n{caption}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def request_for(body: bytes, *, chunk: int = 64 * 1024, disconnect_after: int | None = None) -> Any:
    """A Starlette request whose body arrives in ``chunk``-byte messages; with
    ``disconnect_after``, the client goes away after that many bytes."""
    pieces: Iterator[bytes] = (body[i : i + chunk] for i in range(0, len(body), chunk))
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if disconnect_after is not None and sent >= disconnect_after:
            return {"type": "http.disconnect"}
        piece = next(pieces, b"")
        sent += len(piece)
        more = sent < len(body)
        return {"type": "http.request", "body": piece, "more_body": more}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return Request(scope, receive)


async def test_a_small_file_is_received_in_memory_without_a_file(tmp_path: Path) -> None:
    data = os.urandom(SPOOL)  # exactly the spool size still stays in memory
    destination = tmp_path / "body.part"
    received = await receive_upload(
        request_for(multipart(data, "hello")),
        destination,
        max_bytes=10 * SPOOL,
        spool_bytes=SPOOL,
    )
    assert received.body == data and received.path is None and received.content == data
    assert received.size == len(data)
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert received.fields == {"caption": "hello"} and received.filename == "a.jpg"
    assert not destination.exists()


async def test_a_large_file_is_spilled_to_disk_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * SPOOL + 12345)
    destination = tmp_path / "body.part"
    received = await receive_upload(
        request_for(multipart(data), chunk=10_000),
        destination,
        max_bytes=10 * SPOOL,
        spool_bytes=SPOOL,
    )
    assert received.path == destination and received.body is None
    assert received.content == destination
    assert destination.read_bytes() == data
    assert received.size == len(data)
    assert received.sha256 == hashlib.sha256(data).hexdigest()


async def test_over_the_limit_after_spilling_is_413_and_leaves_no_file(tmp_path: Path) -> None:
    data = os.urandom(4 * SPOOL)
    destination = tmp_path / "body.part"
    request = request_for(multipart(data))
    request.scope["headers"] = request.scope["headers"][:1]  # no Content-Length: streamed check
    with pytest.raises(ApiError) as refused:
        await receive_upload(request, destination, max_bytes=3 * SPOOL, spool_bytes=SPOOL)
    assert refused.value.status == 413
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("disconnect_after", [SPOOL // 2, 2 * SPOOL])
async def test_a_client_that_goes_away_leaves_no_file(
    tmp_path: Path, disconnect_after: int
) -> None:
    data = os.urandom(4 * SPOOL)
    destination = tmp_path / "body.part"
    with pytest.raises(ClientDisconnect):
        await receive_upload(
            request_for(multipart(data), disconnect_after=disconnect_after),
            destination,
            max_bytes=10 * SPOOL,
            spool_bytes=SPOOL,
        )
    assert names_in(tmp_path) == []
