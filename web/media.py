"""The one interface the services and endpoints use for an image's files: :class:`MediaStore`.

Every implementation keeps the same contract for a new upload: **stage → fsync → publish**.

1. :meth:`MediaStore.stage_and_render` puts the uploaded file and its renditions where no
   published read finds them, durably, and returns a :class:`StagedMedia` handle;
2. the caller commits the image's database row (its ``storage_key`` is the handle's ``key``);
3. :meth:`MediaStore.publish` makes the files readable, or :meth:`MediaStore.discard` drops
   them when the row was not committed.

A crash between 2 and 3 leaves staged files whose row exists: :meth:`MediaStore.recover` (at
start-up and now and again) publishes them, and removes the staged files without a row.

A direct upload (the client sends the bytes to where :meth:`MediaStore.issue_upload` says,
then asks the service to process them) goes through the same stage → publish path once the
bytes are fetched into a local file: :meth:`MediaStore.issue_upload` gives the
:class:`UploadTarget` (an object store's presigned ``POST`` or ``PUT``; for the local folder
the service's own ``PUT`` endpoint, whose bodies :meth:`MediaStore.receive_upload_body` keeps),
:meth:`MediaStore.fetch_upload` copies what arrived into a file to render, and
:meth:`MediaStore.delete_upload` drops it.

Reads return a :class:`MediaFile` (a local file to send, bytes, or a URL to redirect to),
never a path into the published layout, so that the endpoints do not depend on where the
files live. :class:`LocalMedia` is the local-disk implementation, over
:class:`~web.storage.LocalImageStore` and :class:`~web.pipeline.RenditionPool`;
:class:`web.object_media.ObjectMedia` the object-storage one (S3, GCS, Azure).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Hashable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

import aiofiles
from anyio import to_thread

from web.pipeline import RenditionPool, RenditionResult, RenditionSpec
from web.pipeline.renditions import FULL_NAME
from web.storage import Committed, LocalImageStore, fsync_directory, new_storage_key
from web.uploads import ReceivedUpload, UploadBody

RENDITION_TYPE = "image/jpeg"
"""The content type of every rendition (display, thumbnail, full size)."""


def media_cache_control(max_age_seconds: int) -> str:
    """``Cache-Control`` of a rendition: private (no proxy or CDN keeps a copy that would
    outlive a deletion or a rejection), reused by the browser for ``max_age_seconds``
    (0: revalidated on every use)."""
    if max_age_seconds == 0:
        return "private, no-cache"
    return f"private, max-age={max_age_seconds}"


# What Path.is_file() takes for "not there" (pathlib's _IGNORED_ERRNOS); others are raised.
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One stored file, ready to be sent: exactly one of ``path``, ``body`` and
    ``redirect`` is set.

    :ivar content_type: its MIME type, e.g. ``"image/jpeg"``.
    :ivar size: its length, bytes.
    :ivar path: a local file holding it (sent as a file: ranges, ``ETag``,
        ``Last-Modified``), or None.
    :ivar body: its bytes, or None.
    :ivar redirect: an absolute URL that serves it (an object store's presigned GET, or a
        public base URL), answered as a redirect; or None.
    :ivar redirect_seconds: how long ``redirect`` stays valid from now, seconds (None: no
        limit); bounds how long the redirect may be cached.
    """

    content_type: str
    size: int
    path: Path | None = None
    body: bytes | None = None
    redirect: str | None = None
    redirect_seconds: int | None = None

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.path, self.body, self.redirect)) != 1:
            raise ValueError("a MediaFile has exactly one of a path, a body or a redirect")


@dataclass(frozen=True, slots=True)
class StagedMedia:
    """An upload staged by :meth:`MediaStore.stage_and_render`: durable, not yet published.

    :ivar key: the image's new storage key (its database row's ``storage_key``).
    :ivar rendition: what the renderer made (sizes, type, render time).
    """

    key: str
    rendition: RenditionResult


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """A direct upload the service agreed to take, as the store is asked to issue it.

    :ivar upload_id: the upload's URL-safe id (the object's name in the store).
    :ivar content_type: the declared MIME type, e.g. ``"image/jpeg"``.
    :ivar size: the declared size, bytes.
    :ivar expires_at: when the target must stop taking bytes (UTC).
    :ivar service_url: the service's own signed URL taking the bytes as a ``PUT`` body (for
        stores that cannot take them themselves, like the local folder).
    """

    upload_id: str
    content_type: str
    size: int
    expires_at: datetime
    service_url: str


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where and how a client sends a direct upload's bytes (the wire contract's answer).

    :ivar method: ``"POST"`` (an HTML form: ``fields``, then the file as field ``file``) or
        ``"PUT"`` (the bytes as the body, with ``headers``).
    :ivar url: where to send them (absolute).
    :ivar fields: form fields to send first, exactly as given (``POST``).
    :ivar headers: request headers to send, exactly as given (``PUT``).
    :ivar expires_at: when ``url`` stops working (UTC).
    """

    method: Literal["POST", "PUT"]
    url: str
    expires_at: datetime
    fields: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchedUpload:
    """A direct upload's bytes copied into a local file by :meth:`MediaStore.fetch_upload`.

    :ivar size: bytes.
    :ivar sha256: hex digest of the bytes copied (not of anything the client declared).
    """

    size: int
    sha256: str


class MediaReader(Protocol):
    """An opened stored file, read in chunks (what :meth:`MediaStore.open_original` returns)."""

    async def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left for -1); ``b""`` at the end."""
        ...

    async def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset`` bytes from the start (``whence`` 0); returns the new position."""
        ...

    async def close(self) -> None:
        """Release the file."""
        ...


class MediaStore(Protocol):
    """The images' files: staging and rendering uploads, publishing, reading, deleting.

    Storage keys are those of :func:`web.storage.new_storage_key`; ``committed`` arguments
    are coroutine functions giving those of some keys that have a database row
    (:data:`web.storage.Committed`).
    """

    async def start(self) -> None:
        """Open the store and start the renderers (in the lifespan, after :meth:`recover`).

        :raises OSError: the storage is not usable.
        :raises web.pipeline.pool.WorkerStartError: a renderer failed to start.
        """
        ...

    async def close(self) -> None:
        """Let accepted renders finish, stop the renderers and give up the store."""
        ...

    async def ping(self) -> None:
        """Check that the store answers (for readiness); a coroutine.

        :raises Exception: it does not (OSError for a folder, 503 ``busy`` for an object
            store).
        """
        ...

    def new_upload_path(self) -> Path:
        """A fresh local path (not created) where a request body too large for memory is
        spilled while it streams in; its folder is on the disk the free-space floor guards."""
        ...

    async def discard_upload(self, path: Path) -> None:
        """Remove a spilled request body that was not staged (missing is fine)."""
        ...

    async def issue_upload(self, grant: UploadGrant) -> UploadTarget:
        """Where the client sends a direct upload's bytes: an object store's presigned
        request (size, key and type bound, expiring at ``grant.expires_at``), or
        ``grant.service_url`` for a store the bytes reach through the service."""
        ...

    async def receive_upload_body(
        self,
        upload_id: str,
        body: UploadBody,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """Keep the bytes of a direct upload sent to the service (the ``PUT`` of
        ``grant.service_url``): streamed with ``body``'s limits, durable when this returns;
        sent again, they replace the previous ones.

        :raises ApiError: as ``body.receive``; nothing of the body is kept then.
        :raises NotImplementedError: a store whose targets take the bytes themselves.
        """
        ...

    async def uploaded_size(self, upload_id: str) -> int | None:
        """The size of a direct upload's bytes as the store holds them, bytes; None when
        nothing arrived."""
        ...

    async def fetch_upload(self, upload_id: str, destination: Path) -> FetchedUpload | None:
        """Copy a direct upload's bytes into ``destination`` (a path from
        :meth:`new_upload_path`, for :meth:`stage_and_render`), hashing them on the way.

        :returns: what was copied; None when there is nothing (``destination`` not made).
        :raises OSError: the copy failed (``destination`` removed).
        """
        ...

    async def delete_upload(self, upload_id: str) -> None:
        """Drop a direct upload's bytes (processed, failed or expired); missing is fine."""
        ...

    async def stage_and_render(
        self, upload: Path | bytes, spec: RenditionSpec, *, room: Hashable = None
    ) -> StagedMedia:
        """Stage an upload under a new key and render it there; everything staged is durable
        when this returns (fsynced on a local disk; an object store's PUTs returned), and
        invisible to :meth:`original`, :meth:`open_original` and :meth:`full_size` until
        :meth:`publish`.

        :param upload: the file's bytes, or a spilled body from :meth:`new_upload_path`
            (consumed when this returns; on an error the caller removes it with
            :meth:`discard_upload`).
        :param spec: rendition sizes and decode limits.
        :param room: whose upload this is, for sharing the renderers fairly.
        :returns: the staged handle. On any error nothing stays staged.
        :raises: as :meth:`web.pipeline.RenditionPool.render` (busy, too large, unsupported,
            corrupt, too costly; OSError when storage fails).
        """
        ...

    async def publish(self, staged: StagedMedia) -> None:
        """Make a staged upload's files readable (after its row is committed).

        :raises OSError: publishing failed; the files stay staged for :meth:`recover`.
        """
        ...

    async def discard(self, staged: StagedMedia) -> None:
        """Drop a staged upload whose row was not committed."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a published image's files (after its row is deleted); missing is fine."""
        ...

    async def ensure_published(self, key: str, committed: Committed) -> bool:
        """Whether the image ``key``'s files are all readable, or staged by a live process
        about to publish them; an interrupted upload of it is finished on the way.

        :returns: False if the files are gone for good (the image cannot be shown).
        """
        ...

    async def recover(
        self, committed: Committed, pending_uploads: Committed | None = None
    ) -> tuple[int, int]:
        """Finish or undo the uploads of every process that died: staged uploads with a row
        are published, the others and the spilled bodies removed; live ones are left alone.
        ``pending_uploads`` (upload ids in, those still issued or processing out) lets a
        store remove the bytes of direct uploads that are over but were not deleted.

        :returns: (published, removed) counts of staged uploads.
        :raises OSError: the storage is not usable.
        """
        ...

    async def rendition(self, key: str, name: str) -> MediaFile | None:
        """Rendition ``name`` (``"display.jpg"`` or ``"thumb.jpg"``) of image ``key``, also
        while its row is committed and its files not yet published; None for any other name,
        a malformed key or a missing file."""
        ...

    async def original(
        self, key: str, content_type: str, *, disposition: str | None = None
    ) -> MediaFile | None:
        """The published original upload of image ``key``, sent as ``content_type``; None if
        it is missing.

        :param disposition: the ``Content-Disposition`` the file is offered with (a
            download's name); a redirect carries it where the store can sign it into the
            URL (S3); files sent by the service get it from the endpoint.
        """
        ...

    async def open_original(self, key: str, executor: Executor) -> MediaReader | None:
        """The published original of image ``key``, opened for reading in chunks; an opened
        file is readable to its end even if the image is deleted meanwhile.

        :param executor: where blocking reads run (one of its own per ZIP archive).
        :returns: the reader (the caller closes it), or None if the original is missing.
        """
        ...

    async def full_size(
        self,
        key: str,
        spec: RenditionSpec,
        committed: Committed,
        *,
        disposition: str | None = None,
    ) -> MediaFile | None:
        """The photo at full resolution (upright sRGB JPEG), rendered on first request and
        kept with the image's files.

        :param spec: ``max_pixels``, ``max_decode_bytes`` and ``full_quality`` are used.
        :param disposition: as in :meth:`original`.
        :param committed: checked after a render: an image deleted meanwhile has its files
            removed again and None is returned.
        :returns: the file, or None if the image is gone.
        :raises: as :meth:`web.pipeline.RenditionPool.render_full`.
        """
        ...


class LocalMedia:
    """:class:`MediaStore` on local disk (or a shared NFSv4 folder), see :mod:`web.storage`.

    :param store: the image files' folders.
    :param renditions: the worker processes that stage and render uploads.
    """

    def __init__(self, store: LocalImageStore, renditions: RenditionPool) -> None:
        self.store = store
        self.renditions = renditions

    async def start(self) -> None:
        """See :meth:`MediaStore.start`."""
        await self.store.start()
        await self.renditions.start()

    async def close(self) -> None:
        """See :meth:`MediaStore.close`."""
        await self.renditions.close()
        await self.store.close()

    async def ping(self) -> None:
        """See :meth:`MediaStore.ping`: the published folder is there and readable.

        :raises OSError: it is not.
        """
        await to_thread.run_sync(os.listdir, self.store.media)

    def new_upload_path(self) -> Path:
        """See :meth:`MediaStore.new_upload_path` (``uploads/<owner>/<random>.part``)."""
        return self.store.new_upload_path()

    async def discard_upload(self, path: Path) -> None:
        """See :meth:`MediaStore.discard_upload`."""
        await self.store.discard(path)

    async def issue_upload(self, grant: UploadGrant) -> UploadTarget:
        """See :meth:`MediaStore.issue_upload`: the service's own ``PUT`` endpoint, with the
        declared type as the one header to send."""
        return UploadTarget(
            method="PUT",
            url=grant.service_url,
            expires_at=grant.expires_at,
            headers={"Content-Type": grant.content_type},
        )

    async def receive_upload_body(
        self,
        upload_id: str,
        body: UploadBody,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """See :meth:`MediaStore.receive_upload_body`: streamed into
        ``direct/<id>.<random>.part``, fsynced, then renamed to ``direct/<id>``."""
        part = self.store.new_direct_part(upload_id)
        received = await body.receive(
            part, max_bytes=max_bytes, idle_timeout=idle_timeout, min_free_bytes=min_free_bytes
        )
        final = self.store.direct_file(upload_id)

        def publish() -> None:
            assert received.path is not None, "a direct upload's body is kept on disk"
            os.replace(received.path, final)
            fsync_directory(final.parent)

        try:
            await to_thread.run_sync(publish)
        except BaseException:
            await self.store.discard(part)
            raise
        return ReceivedUpload(
            path=final,
            body=None,
            size=received.size,
            sha256=received.sha256,
            filename=None,
            fields={},
        )

    async def uploaded_size(self, upload_id: str) -> int | None:
        """See :meth:`MediaStore.uploaded_size`."""
        return await to_thread.run_sync(_regular_file_size, self.store.direct_file(upload_id))

    async def fetch_upload(self, upload_id: str, destination: Path) -> FetchedUpload | None:
        """See :meth:`MediaStore.fetch_upload`: a copy (not a move, so that a crash before
        the image's commit leaves the bytes for the retry), hashed in the same pass."""
        source = self.store.direct_file(upload_id)

        def work() -> FetchedUpload | None:
            digest = hashlib.sha256()
            size = 0
            try:
                reader = open(source, "rb")  # noqa: SIM115 (closed below, with the writer)
            except FileNotFoundError:
                return None
            try:
                with reader, open(destination, "wb") as writer:
                    while chunk := reader.read(_COPY_CHUNK):
                        digest.update(chunk)
                        writer.write(chunk)
                        size += len(chunk)
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
            return FetchedUpload(size, digest.hexdigest())

        return await to_thread.run_sync(work)

    async def delete_upload(self, upload_id: str) -> None:
        """See :meth:`MediaStore.delete_upload`."""
        await self.store.discard_direct(upload_id)

    async def stage_and_render(
        self, upload: Path | bytes, spec: RenditionSpec, *, room: Hashable = None
    ) -> StagedMedia:
        """See :meth:`MediaStore.stage_and_render`: one worker job stages the upload into
        ``staging/<owner>/<key>/`` and renders it there, fsyncing everything."""
        key = new_storage_key()
        folder = self.store.staging_folder(key)
        try:
            rendition = await self.renditions.stage_and_render(upload, folder, spec, room=room)
        except BaseException:
            await self.store.discard(folder)
            raise
        return StagedMedia(key, rendition)

    async def publish(self, staged: StagedMedia) -> None:
        """See :meth:`MediaStore.publish`: the folder is renamed into ``media/``."""
        await self.store.publish(staged.key)

    async def discard(self, staged: StagedMedia) -> None:
        """See :meth:`MediaStore.discard`."""
        await self.store.discard(self.store.staging_folder(staged.key))

    async def delete(self, key: str) -> None:
        """See :meth:`MediaStore.delete`."""
        await self.store.delete(key)

    async def ensure_published(self, key: str, committed: Committed) -> bool:
        """See :meth:`MediaStore.ensure_published`."""
        return await self.store.ensure_published(key, committed)

    async def recover(
        self, committed: Committed, pending_uploads: Committed | None = None
    ) -> tuple[int, int]:
        """See :meth:`MediaStore.recover`; it may run before :meth:`start` (it opens the
        store itself). A direct upload's local bytes are removed as it ends (a local delete
        does not fail for an outage), so ``pending_uploads`` is not needed here."""
        return await self.store.recover(committed)

    async def rendition(self, key: str, name: str) -> MediaFile | None:
        """See :meth:`MediaStore.rendition`: the file in ``media/``, else the staged bytes."""
        path = self.store.public_file(key, name)
        if path is None:
            return None
        size = await to_thread.run_sync(_regular_file_size, path)
        if size is not None:
            return MediaFile(RENDITION_TYPE, size, path=path)
        # Committed, not yet moved into media/: a page filling a gap from the event log asks now.
        staged = await self.store.read_staged_rendition(key, name)
        if staged is None:
            return None
        return MediaFile(RENDITION_TYPE, len(staged), body=staged)

    async def original(
        self, key: str, content_type: str, *, disposition: str | None = None
    ) -> MediaFile | None:
        """See :meth:`MediaStore.original` (``disposition``: the endpoint sends it)."""
        path = self.store.original_file(key)
        size = await to_thread.run_sync(_regular_file_size, path)
        return None if size is None else MediaFile(content_type, size, path=path)

    async def open_original(self, key: str, executor: Executor) -> MediaReader | None:
        """See :meth:`MediaStore.open_original`."""
        try:
            return await aiofiles.open(self.store.original_file(key), "rb", executor=executor)
        except FileNotFoundError:
            return None

    async def full_size(
        self,
        key: str,
        spec: RenditionSpec,
        committed: Committed,
        *,
        disposition: str | None = None,
    ) -> MediaFile | None:
        """See :meth:`MediaStore.full_size` (``disposition``: the endpoint sends it):
        ``full.jpg`` in the image's ``media/`` folder, rendered there by a worker when
        missing (concurrent requests share one render)."""
        original = self.store.original_file(key)
        folder = original.parent
        full = folder / FULL_NAME
        size = await to_thread.run_sync(_regular_file_size, full)
        if size is None:
            try:
                size = (await self.renditions.render_full(original, folder, spec)).file_bytes
            except FileNotFoundError:
                return None  # deleted meanwhile
            if key not in await committed([key]):
                # Deleted while rendering: the folder's removal may have missed the new file.
                await self.store.delete(key)
                return None
        return MediaFile(RENDITION_TYPE, size, path=full)


_COPY_CHUNK = 1024 * 1024


def _regular_file_size(path: Path) -> int | None:
    """The size of ``path`` if it is a regular file (symlinks followed), else None
    (blocking)."""
    try:
        found = os.stat(path)
    except OSError as exc:
        if exc.errno in _MISSING_ERRNOS:
            return None
        raise
    return found.st_size if stat.S_ISREG(found.st_mode) else None
