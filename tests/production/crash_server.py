"""``python -m tests.production.crash_server serve ...``: ``imageshark serve`` whose uploads
stop for good between the database commit and the move of their files into ``media/``.

Each stopped upload prints ``CRASH_POINT <storage key>``, so that a test can kill the process
exactly there (after the row and its ``image_added`` are committed, before the rename); each
write of a spilled request body to its ``uploads/`` file prints ``SPILLED <bytes>`` once the
bytes are on disk.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import aiofiles
import aiofiles.os

from web import cli, uploads
from web.storage import LocalImageStore

CRASH_POINT = "crash point: committed, not published"
SPILLED = "spilled body bytes on disk:"


async def _stop_before_publish(self: LocalImageStore, key: str) -> None:
    print(f"{CRASH_POINT} {key}", flush=True)
    await asyncio.Event().wait()  # until the process is killed


class _AnnouncingFile:
    """An aiofiles binary file that prints :data:`SPILLED` after each write reaches the OS."""

    def __init__(self, file: Any) -> None:
        self._file = file

    async def write(self, data: bytes) -> int:
        written = int(await self._file.write(data))
        await self._file.flush()
        print(f"{SPILLED} {written}", flush=True)
        return written

    async def flush(self) -> None:
        await self._file.flush()

    def fileno(self) -> int:
        return int(self._file.fileno())

    async def close(self) -> None:
        await self._file.close()


async def _announcing_open(path: Any, mode: Any) -> _AnnouncingFile:
    return _AnnouncingFile(await aiofiles.open(path, mode))


if __name__ == "__main__":
    LocalImageStore.publish = _stop_before_publish  # type: ignore[method-assign]
    # web.uploads writes spilled bodies through aiofiles.open and removes them with aiofiles.os.
    uploads.aiofiles = types.SimpleNamespace(  # type: ignore[attr-defined,assignment]
        open=_announcing_open, os=aiofiles.os
    )
    cli.main()
