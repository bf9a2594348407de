"""Image files on local disk, laid out so that a crash never leaves a half-stored image.

Layout under the data folder:

- ``owners/<owner>.lock`` — one per running process (its *owner id*, random per start), held
  with an exclusive ``flock(2)`` for as long as the process lives;
- ``uploads/<owner>/<random>.part`` — a request body's file while it streams in (only a file
  too large to be received in memory, see ``web.uploads.SPOOL_BYTES``);
- ``staging/<owner>/<key>/`` — an image's files (``original``, ``display.jpg``,
  ``thumb.jpg``) made but not yet committed to the database, or committed and not yet moved;
- ``direct/<upload id>`` — the bytes of a direct upload sent to the service (``PUT``), kept
  until the upload is processed or expires (not per owner: any process may resume it, see
  :mod:`web.images.direct`); ``direct/<upload id>.<random>.part`` while they stream in;
- ``media/<key>/`` — a committed image's files; only ``display.jpg`` and ``thumb.jpg`` are ever
  served to guests, ``original`` only to the host.

An upload writes everything into its process's ``staging/<owner>/<key>``, commits the database
row, then renames the folder into ``media/`` (one atomic ``rename(2)``). A crash can stop it
anywhere; the kernel then releases the dead process's lock. :meth:`LocalImageStore.recover`
(at start-up and every :data:`RECOVERY_PERIOD_SECONDS`) takes every owner lock it can get —
only a dead owner's is free — and finishes that owner's uploads whatever their age: staged
folders whose row exists are published, the others and the partial bodies removed. Entries of
live processes are never touched, so replicas may share the folder.

Sharing the folder between machines needs a file system whose ``flock`` locks are seen by
every client and released when the holder dies: local disks and NFSv4 (Linux maps ``flock``
to NFS byte-range locks; a dead client's locks are freed when its lease expires, about 90 s)
do; NFSv3 without ``lockd``, or mounted with ``nolock``/``local_lock``, does not.

The store's blocking file-system calls run in a worker thread; staging an upload
(:func:`stage_upload`) is done by the rendition worker that renders it, in the same job.
The services reach the store only through :class:`web.media.LocalMedia`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from anyio import to_thread

STALE_AFTER_SECONDS = 3600.0
"""Age after which an upload in the layout without owners (``staging/<key>``,
``uploads/<name>.part``, written by versions before owner locks) is certainly abandoned: a
40 MiB body at 100 kbit/s takes under an hour. Such a folder whose row exists is published at
any age."""
RECOVERY_PERIOD_SECONDS = 60.0
"""How often a running process finishes the uploads of processes that died (see
:meth:`LocalImageStore.recover`); start-up does it at once."""
FILES = ("original", "display.jpg", "thumb.jpg")
"""The files every stored image has in its folder."""
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
    """The image files of one service, in a folder that replicas may share (e.g. NFSv4).

    One instance per process: :meth:`start` makes it the owner of a fresh owner id, whose
    lock it holds until :meth:`close` (or death).

    :param root: the data folder; ``owners``, ``uploads``, ``staging`` and ``media`` are made
        inside it.
    """

    def __init__(self, root: Path) -> None:
        self.owners = root / "owners"
        self.uploads = root / "uploads"
        self.staging = root / "staging"
        self.media = root / "media"
        self.direct = root / "direct"
        self.owner = secrets.token_hex(8)
        self._lock: int | None = None

    @property
    def own_uploads(self) -> Path:
        """``uploads/<owner>``: this process's request bodies."""
        return self.uploads / self.owner

    @property
    def own_staging(self) -> Path:
        """``staging/<owner>``: this process's uploads not yet published."""
        return self.staging / self.owner

    def _lock_file(self, owner: str) -> Path:
        return self.owners / f"{owner}.lock"

    async def start(self) -> None:
        """Create the folders and take this process's owner lock (once; later calls do
        nothing).

        :raises OSError: the folder is not writable, or the file system refuses ``flock``.
        """

        def work() -> None:
            for folder in (self.owners, self.uploads, self.staging, self.media, self.direct):
                folder.mkdir(parents=True, exist_ok=True)
            # The lock exists before the owner's folders and is removed after them, so a
            # folder in staging/ without a lock file is one of the old layout's keys.
            fd = os.open(self._lock_file(self.owner), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            except BaseException:
                os.close(fd)
                raise
            self._lock = fd
            self.own_uploads.mkdir(exist_ok=True)
            self.own_staging.mkdir(exist_ok=True)
            fsync_directory(self.owners)
            fsync_directory(self.staging)

        if self._lock is None:
            await to_thread.run_sync(work)

    async def close(self) -> None:
        """Give up the owner lock at shutdown; this process's folders and lock file are removed
        if nothing is left in them (anything left is recovered by another process)."""

        def work() -> None:
            assert self._lock is not None
            try:
                self.own_uploads.rmdir()
                self.own_staging.rmdir()
                self._lock_file(self.owner).unlink()
            except OSError:
                pass  # not empty: the lock file stays, for the recovery to find
            finally:
                os.close(self._lock)
                self._lock = None

        if self._lock is not None:
            await to_thread.run_sync(work)

    def new_upload_path(self) -> Path:
        """A fresh path under ``uploads/<owner>/`` for a request body's file (not created)."""
        return self.own_uploads / f"{secrets.token_hex(16)}.part"

    def direct_file(self, upload_id: str) -> Path:
        """``direct/<upload id>``: where a direct upload's bytes are kept once received.

        :raises ValueError: ``upload_id`` is not a URL-safe id of 16 to 64 characters.
        """
        if _KEY_PATTERN.fullmatch(upload_id) is None:
            raise ValueError("malformed upload id")
        return self.direct / upload_id

    def new_direct_part(self, upload_id: str) -> Path:
        """A fresh ``direct/<upload id>.<random>.part`` (not created) for a body streaming in."""
        return self.direct_file(upload_id).with_name(f"{upload_id}.{secrets.token_hex(8)}.part")

    async def discard_direct(self, upload_id: str) -> None:
        """Remove a direct upload's bytes and any part of them still streaming in."""

        def work() -> None:
            _remove([self.direct_file(upload_id), *self.direct.glob(f"{upload_id}.*.part")])

        await to_thread.run_sync(work)

    def staging_folder(self, key: str) -> Path:
        """Where this process stages the image ``key`` (not created: see
        :func:`stage_upload`)."""
        return self.own_staging / key

    async def publish(self, key: str) -> None:
        """Move ``staging/<owner>/<key>`` to ``media/<key>`` durably (after the row is
        committed).

        The folder's files and entries must already be on disk, as the rendition worker leaves
        them: only a rendered upload's row is ever committed.

        :raises OSError: the move failed (the folder stays staged, for recovery to finish).
        """

        def work() -> None:
            # The rendition worker fsynced the folder's three files and its entries
            # (web.pipeline.renditions.render_file), so only the move is left to make durable.
            os.replace(self.staging_folder(key), self.media / key)
            fsync_directory(self.media)
            fsync_directory(self.own_staging)

        await to_thread.run_sync(work)

    async def discard(self, *paths: Path) -> None:
        """Remove files or folders (a failed upload's leftovers); missing ones are fine."""
        await to_thread.run_sync(_remove, paths)

    async def delete(self, key: str) -> None:
        """Remove a published image's folder (after its row is deleted)."""
        await self.discard(self.media / key)

    def public_file(self, key: str, name: str) -> Path | None:
        """The path of a servable rendition, or None for anything else (originals included)."""
        if name not in PUBLIC_RENDITIONS or _KEY_PATTERN.fullmatch(key) is None:
            return None
        return self.media / key / name

    async def read_staged_rendition(self, key: str, name: str) -> bytes | None:
        """The bytes of rendition ``name`` of the image ``key`` while its row is committed but
        its folder not yet moved into ``media/`` (any process's staging, or ``media/`` if the
        move happened meanwhile); None if it is in neither.

        An upload's row, and so its ``image_added`` in the event log, is visible to a page
        filling a gap before :meth:`publish` renames the folder; the staged files are complete
        and fsynced by then, so serving them is serving the image. ``key`` and ``name`` must
        have passed :meth:`public_file`.
        """

        def work() -> bytes | None:
            for staged in (*self.staging.glob(f"*/{key}/{name}"), self.media / key / name):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    return staged.read_bytes()
            return None

        return await to_thread.run_sync(work)

    def original_file(self, key: str) -> Path:
        """The path of an image's original upload (host-only)."""
        return self.media / key / ORIGINAL

    async def recover(self, committed: Committed) -> tuple[int, int]:
        """Finish or undo the uploads of every process that died, whatever their age; call at
        start-up (it calls :meth:`start`) and then now and again.

        A dead process's staged folders whose row exists are published, its other folders and
        its partial request bodies removed. Entries of live processes are left alone.
        Entries of the layout without owners (older versions) are published if committed,
        else removed once :data:`STALE_AFTER_SECONDS` old.

        :param committed: coroutine function: given storage keys, returns those that have a
            database row.
        :returns: (published, removed) counts of staged folders.
        :raises OSError: the data folder is not usable.
        """
        await self.start()
        published = removed = 0
        for owner in await to_thread.run_sync(self._other_owners):
            lock = await to_thread.run_sync(self._try_lock, owner)
            if lock is None:
                continue  # alive
            try:
                done = await self._take_over(owner, committed)
            finally:
                os.close(lock)
            published, removed = published + done[0], removed + done[1]
        done = await self._recover_unowned(committed)
        return published + done[0], removed + done[1]

    async def ensure_published(self, key: str, committed: Committed) -> bool:
        """Whether the image ``key``'s files are all in ``media/``, or staged by a live
        process that is about to move them there; a dead process's staged folder of it is
        published on the way (with the rest of that process's uploads).

        :param committed: as for :meth:`recover`.
        :returns: False if the files are gone for good (the image cannot be shown).
        """
        if await to_thread.run_sync(self._published, key):
            return True
        # Staging is looked at before media/ again: an upload in flight moves from one to the
        # other, never back.
        owner = await to_thread.run_sync(self._staged_by, key)
        if owner == self.owner:
            return True  # this process's upload, between its commit and its move
        if owner is not None:
            lock = await to_thread.run_sync(self._try_lock, owner)
            if lock is None:
                return True  # another live process's upload, between its commit and its move
            try:
                await self._take_over(owner, committed)
            finally:
                os.close(lock)
        elif await to_thread.run_sync(lambda: (self.staging / key).is_dir()):
            await self._recover_unowned(committed)
        return await to_thread.run_sync(self._published, key)

    def _published(self, key: str) -> bool:
        return all((self.media / key / name).is_file() for name in FILES)

    def _staged_by(self, key: str) -> str | None:
        for owner in [*self._other_owners(), self.owner]:
            if (self.staging / owner / key).is_dir():
                return owner
        return None

    def _other_owners(self) -> list[str]:
        return [
            path.name.removesuffix(".lock")
            for path in self.owners.iterdir()
            if path.name.endswith(".lock") and path.name != f"{self.owner}.lock"
        ]

    def _try_lock(self, owner: str) -> int | None:
        """An open descriptor holding ``owner``'s lock, or None if a live process holds it (or
        it is gone). flock conflicts between two opens even in one process."""
        try:
            fd = os.open(self._lock_file(owner), os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def _take_over(self, owner: str, committed: Committed) -> tuple[int, int]:
        """Finish a dead ``owner``'s uploads, its lock held by the caller; its folders and
        lock file are removed. Idempotent: two processes may take turns at it."""
        staged = await to_thread.run_sync(_names, self.staging / owner)
        keep = await committed(staged) if staged else set()
        published, removed = await self._settle(self.staging / owner, staged, keep, committed)

        def forget() -> None:
            _remove([self.uploads / owner])
            with contextlib.suppress(FileNotFoundError):
                (self.staging / owner).rmdir()
            self._lock_file(owner).unlink(missing_ok=True)

        await to_thread.run_sync(forget)
        return published, removed

    async def _recover_unowned(self, committed: Committed) -> tuple[int, int]:
        """The old layout's leftovers: committed keys published at any age, the rest removed
        once stale (an older replica may still be writing them)."""
        cutoff = time.time() - STALE_AFTER_SECONDS

        def listing() -> tuple[list[Path], list[str]]:
            parts, keys = list(self.uploads.iterdir()), list(self.staging.iterdir())
            # Owners listed last: an owner's lock file is made before its folders.
            owners = {path.name.removesuffix(".lock") for path in self.owners.iterdir()}
            return (
                [path for path in parts if path.name not in owners and _older(path, cutoff)],
                [path.name for path in keys if path.name not in owners],
            )

        partial, keys = await to_thread.run_sync(listing)
        await self.discard(*partial)
        if not keys:
            return 0, 0
        keep = await committed(keys)
        stale = await to_thread.run_sync(
            lambda: {key for key in keys if _older(self.staging / key, cutoff)}
        )
        settle = [key for key in keys if key in keep or key in stale]
        return await self._settle(self.staging, settle, keep, committed)

    async def _settle(
        self, folder: Path, keys: list[str], keep: set[str], committed: Committed
    ) -> tuple[int, int]:
        """Publish those of ``folder``'s staged ``keys`` that are in ``keep`` (have a row),
        remove the others."""
        if not keys:
            return 0, 0

        def work() -> list[str]:
            moved = []
            for key in keys:
                if key in keep and not (self.media / key).exists():
                    with contextlib.suppress(FileNotFoundError):  # another recovery was first
                        os.replace(folder / key, self.media / key)
                        moved.append(key)
                else:
                    _remove([folder / key])
            fsync_directory(self.media)
            return moved

        moved = await to_thread.run_sync(work)
        # An image deleted between the look-up and the move: its folder would have no row.
        gone = set(moved) - await committed(moved) if moved else set()
        await self.discard(*(self.media / key for key in gone))
        return len(moved) - len(gone), len(keys) - len(moved) + len(gone)


Committed = Callable[[Iterable[str]], Awaitable[set[str]]]
"""Given storage keys, returns (a coroutine giving) those that have a database row."""


def _names(folder: Path) -> list[str]:
    try:
        return [path.name for path in folder.iterdir()]
    except FileNotFoundError:
        return []


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _remove(paths: Iterable[Path]) -> None:
    """Remove files or folders (blocking); missing ones are fine."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
