"""Image files on local disk, laid out so that a crash never leaves a half-stored image.

Layout under the data folder:

- ``uploads/<random>.part`` — a request body's file while it streams in (only a file too large
  to be received in memory, see ``web.uploads.SPOOL_BYTES``);
- ``staging/<key>/`` — an image's files (``original``, ``display.jpg``, ``thumb.jpg``) made
  but not yet committed to the database;
- ``media/<key>/`` — a committed image's files; only ``display.jpg`` and ``thumb.jpg`` are ever
  served to guests, ``original`` only to the host.

An upload writes everything into ``staging/<key>``, commits the database row, then renames the
folder into ``media/`` (one atomic ``rename(2)``). :meth:`LocalImageStore.recover` runs at
start-up and finishes or undoes whatever a crash interrupted: staged folders whose row exists are
published, others removed. Replicas may share the folder, so recovery only touches entries
older than any upload in flight could be. The store's blocking file-system calls run in a
worker thread; staging an upload (:func:`stage_upload`) is done by the rendition worker that
renders it, in the same job.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from anyio import to_thread

STALE_AFTER_SECONDS = 3600.0
"""Age after which an unfinished upload is certainly abandoned: a 40 MiB body at 100 kbit/s
takes under an hour."""
PUBLIC_RENDITIONS = frozenset({"display.jpg", "thumb.jpg"})
ORIGINAL = "original"
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_storage_key() -> str:
    """A fresh unguessable folder name for one image (128 random bits, 22 characters)."""
    return secrets.token_urlsafe(16)


def fsync_directory(path: Path) -> None:
    """Flush a directory's entries to disk (blocking).

    A new or renamed file is durable only once its directory entry is (POSIX fsync(2)).
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage_upload(upload: Path | bytes, folder: Path) -> Path:
    """Make the staging ``folder`` and put the uploaded file in it as ``original`` (blocking;
    run by the rendition worker, see :meth:`web.pipeline.RenditionPool.stage_and_render`).

    Idempotent, so that a job retried after its worker died finishes the work: the folder may
    exist, the bytes are written again, and a file already moved is not looked for again.

    :param upload: the file's bytes, or the path of the spilled request body (moved, not
        copied: it must be on the same file system).
    :param folder: ``staging/<key>`` of a new key.
    :returns: the path of the original in ``folder``. Not yet fsynced.
    :raises OSError: if the folder cannot be made or the file written or moved.
    """
    folder.mkdir(exist_ok=True)
    original = folder / ORIGINAL
    if isinstance(upload, bytes):
        with open(original, "wb") as handle:
            handle.write(upload)
    elif upload.exists() or not original.exists():
        os.replace(upload, original)
    return original


class LocalImageStore:
    """The image files of one service, in a folder that replicas may share (e.g. NFS).

    :param root: the data folder; ``uploads``, ``staging`` and ``media`` are made inside it.
    """

    def __init__(self, root: Path) -> None:
        self.uploads = root / "uploads"
        self.staging = root / "staging"
        self.media = root / "media"

    async def start(self) -> None:
        """Create the folders."""

        def work() -> None:
            for folder in (self.uploads, self.staging, self.media):
                folder.mkdir(parents=True, exist_ok=True)

        await to_thread.run_sync(work)

    def new_upload_path(self) -> Path:
        """A fresh path under ``uploads/`` for a request body's file (not created)."""
        return self.uploads / f"{secrets.token_hex(16)}.part"

    def staging_folder(self, key: str) -> Path:
        """Where the image ``key`` is staged (not created: see :func:`stage_upload`)."""
        return self.staging / key

    async def publish(self, key: str) -> None:
        """Move ``staging/<key>`` to ``media/<key>`` durably (after the row is committed).

        The folder's files and entries must already be on disk, as the rendition worker leaves
        them: only a rendered upload's row is ever committed.
        """

        def work() -> None:
            folder = self.staging / key
            if not folder.exists() and (self.media / key).exists():
                return  # another replica's recovery published it already
            # The rendition worker fsynced the folder's three files and its entries
            # (web.pipeline.renditions.render_file), so only the move is left to make durable.
            os.replace(folder, self.media / key)
            fsync_directory(self.media)
            fsync_directory(self.staging)

        await to_thread.run_sync(work)

    async def discard(self, *paths: Path) -> None:
        """Remove files or folders (a failed upload's leftovers); missing ones are fine."""

        def work() -> None:
            for path in paths:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

        await to_thread.run_sync(work)

    async def delete(self, key: str) -> None:
        """Remove a published image's folder (after its row is deleted)."""
        await self.discard(self.media / key, self.staging / key)

    def public_file(self, key: str, name: str) -> Path | None:
        """The path of a servable rendition, or None for anything else (originals included)."""
        if name not in PUBLIC_RENDITIONS or _KEY_PATTERN.fullmatch(key) is None:
            return None
        return self.media / key / name

    def original_file(self, key: str) -> Path:
        """The path of an image's original upload (host-only)."""
        return self.media / key / ORIGINAL

    async def recover(
        self,
        committed: Callable[[Iterable[str]], Awaitable[set[str]]],
        older_than: float = STALE_AFTER_SECONDS,
    ) -> tuple[int, int]:
        """Finish or undo uploads a crash interrupted; call once at start-up.

        :param committed: given storage keys, returns those that have a database row.
        :param older_than: only entries last modified this many seconds ago or earlier are
            touched (others may belong to an upload in flight on another replica).
        :returns: (published, removed) counts of staged folders; partial uploads are removed too.
        """
        await self.start()
        cutoff = time.time() - older_than

        def stale(paths: Iterable[Path]) -> list[Path]:
            found = []
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime <= cutoff:
                        found.append(path)
            return found

        def listing() -> tuple[list[Path], list[str]]:
            return (
                stale(self.uploads.iterdir()),
                [path.name for path in stale(self.staging.iterdir())],
            )

        partial, staged = await to_thread.run_sync(listing)
        await self.discard(*partial)
        keep = await committed(staged) if staged else set()
        published = 0
        for key in staged:
            if key in keep:
                await self.publish(key)
                published += 1
            else:
                await self.discard(self.staging / key)
        return published, len(staged) - published
