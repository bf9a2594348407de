"""Image files in an object store (S3 and S3-compatible stores, Google Cloud Storage, Azure Blob
Storage): :class:`ObjectMedia`, the :class:`~web.media.MediaStore` behind
``IMAGESHARK_STORAGE_URL=s3://...`` (``gs://``, ``az://``), over obstore
(docs/decisions/0023-object-storage-library.md).

Layout under the URL's prefix, one "folder" per storage key:
``<key>/original``, ``<key>/display.jpg``, ``<key>/thumb.jpg`` and, once asked for,
``<key>/full.jpg``.

**Stage → durable → publish without a rename.** An object store has no atomic rename of a
folder (S3's copy + delete of every object is neither atomic nor cheap), so objects are written
under their *final* keys and the committed database row is what publishes them:

1. :meth:`ObjectMedia.stage_and_render` renders in the replica's
   :class:`~web.pipeline.RenditionPool` into a request-temporary local folder
   (``staging/<owner>/<key>/`` of a :class:`~web.storage.LocalImageStore`, whose owner locks
   let a restarted replica remove a dead one's temporary files), PUTs the three files, and
   removes the folder in every case. The objects are durable when their PUTs return: S3, GCS
   and Azure acknowledge a write once it is stored redundantly.
2. The service commits the row. Until then no one knows the key (128 random bits), so nothing
   reads the objects: they are invisible in the only sense readers have.
3. :meth:`ObjectMedia.publish` has nothing left to do.

A failed upload deletes its objects at once; when that is impossible (the store went down
between the PUTs and the delete, or the process died), :meth:`ObjectMedia.recover` (the
lifecycle sweeper, at start-up and every :data:`SWEEP_PERIOD_SECONDS`) lists the prefix and
removes every key whose objects are all older than :data:`ORPHAN_GRACE_SECONDS` and that has no
row. The grace keeps it away from the uploads in flight on live replicas, whose rows are not
committed yet. A staging prefix copied on publish was the alternative: it doubles the writes,
and a crash between the copy and the delete leaves the same orphans to sweep. Bucket lifecycle
rules cannot replace the sweeper (they expire by age, not by "has no row"), but a rule
aborting incomplete multipart uploads after a day is a good complement (README).

**Reads** never pass the bytes through the service: renditions, originals and full-size
files are :class:`~web.media.MediaFile` redirects to a presigned GET (``media_url_seconds``),
or for renditions to ``IMAGESHARK_MEDIA_BASE_URL/<key>/<name>``; one HEAD first checks that
the object exists, so a deleted image's URL answers 404 rather than a redirect to the store's
refusal. :meth:`ObjectMedia.open_original` streams the original from the store (the ZIP
export). :meth:`ObjectMedia.full_size` downloads the original to a temporary folder, renders
``full.jpg`` and uploads it.

**The store down**: every call that needs it raises
:class:`~web.object_store.StoreUnavailable` (``503 busy`` with ``Retry-After``) after
obstore's retries (:data:`~web.object_store.RETRIES`, within
:data:`~web.object_store.RETRY_SECONDS`); the next request tries again, so the service
recovers without a restart. Deletions that fail are logged and left to the sweeper (the row
is gone already).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Executor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, urlsplit

import aiofiles
import obstore
from obstore.exceptions import NotFoundError
from obstore.store import AzureStore, S3Store

from web.errors import ApiError
from web.media import (
    RENDITION_TYPE,
    FetchedUpload,
    MediaFile,
    MediaReader,
    StagedMedia,
    UploadGrant,
    UploadTarget,
)
from web.object_store import (
    PUT_CHUNK_BYTES,
    READ_CHUNK_BYTES,
    ObjectReader,
    ObjectStore,
    S3Signer,
    StoreUnavailable,
    browser_origins,
    file_chunks,
    reaching_store,
)
from web.pipeline import RenditionPool, RenditionResult, RenditionSpec
from web.pipeline.renditions import DISPLAY_NAME, FULL_NAME, THUMB_NAME
from web.storage import (
    ORIGINAL,
    PUBLIC_RENDITIONS,
    Committed,
    LocalImageStore,
    new_storage_key,
)
from web.uploads import ReceivedUpload, UploadBody

if TYPE_CHECKING:
    from obstore import Attributes, Bytes

logger = logging.getLogger(__name__)

OBJECT_NAMES = (ORIGINAL, DISPLAY_NAME, THUMB_NAME, FULL_NAME)
"""Every object an image may have under its key."""
ORPHAN_GRACE_SECONDS = 3600.0
"""Age after which a key's objects without a database row are an abandoned upload: from its
first PUT to its commit an upload takes seconds (the body is received and rendered before);
the hour is the local store's ``STALE_AFTER_SECONDS``."""
SWEEP_PERIOD_SECONDS = 900.0
"""Least time between two sweeps of the bucket by one replica (start-up sweeps at once): a
sweep lists the whole prefix, one request per 1000 objects."""
_COMMITTED_BATCH = 500
_PING_PATH = "readiness-probe"  # not a storage key: never written, never swept
DIRECT_PREFIX = "direct"
"""Where a direct upload's bytes land, ``direct/<upload id>`` under the store's prefix (not a
storage key: the orphan sweep leaves them to the direct uploads' own sweep; a bucket
lifecycle rule expiring this prefix after a day is a backstop)."""
AZURE_BLOB_TYPE_HEADER = "x-ms-blob-type"
"""The header Azure's Put Blob refuses a request without (400), so a direct upload's presigned
PUT to Azure carries it (the container's CORS rule must allow it)."""
FETCH_CHUNK_BYTES = 8 * 1024 * 1024
"""Least piece of a direct upload's GET that :meth:`ObjectMedia.fetch_upload` hashes and
writes at once, bytes: a phone photo (3-12 MB) in one or two pieces; memory per upload in
flight stays bounded by it."""
PUT_IN_ONE_READ_BYTES = PUT_CHUNK_BYTES
"""Files up to this size are read in one piece and PUT from memory (one PUT, as a streamed
file this small would be); larger ones stream through :func:`~web.object_store.file_chunks`."""
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


async def _nothing_committed(keys: Iterable[str]) -> set[str]:
    """For the scratch folder's recovery: a temporary folder is never published."""
    return set()


class ObjectMedia:
    """:class:`~web.media.MediaStore` over an object store (see the module's docstring).

    :param store: the bucket and prefix (:func:`web.object_store.open_object_store`).
    :param scratch: request-temporary files (spilled bodies, renders) on local disk; nothing
        stays there after a request.
    :param renditions: the worker processes that render.
    :param url_seconds: lifetime of presigned GETs, seconds.
    :param media_base_url: a public base URL of the prefix for renditions, or None.
    :param cache_control: ``Cache-Control`` stored with the renditions (what the store or a
        CDN answers with).
    :param orphan_grace_seconds: see :data:`ORPHAN_GRACE_SECONDS`.
    :param sweep_period_seconds: see :data:`SWEEP_PERIOD_SECONDS`.
    :param clock: seconds since the epoch (``time.time``).
    """

    def __init__(
        self,
        store: ObjectStore,
        scratch: LocalImageStore,
        renditions: RenditionPool,
        *,
        url_seconds: int,
        media_base_url: str | None = None,
        cache_control: str = "private, max-age=300",
        orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS,
        sweep_period_seconds: float = SWEEP_PERIOD_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.scratch = scratch
        self.renditions = renditions
        self.url_seconds = url_seconds
        self.media_base_url = media_base_url.rstrip("/") if media_base_url else None
        self.cache_control = cache_control
        self.orphan_grace_seconds = orphan_grace_seconds
        self.sweep_period_seconds = sweep_period_seconds
        self.clock = clock
        self._swept_at: float | None = None
        self._full_renders: dict[str, asyncio.Future[int | None]] = {}
        self._s3_signer = S3Signer(store) if isinstance(store, S3Store) else None
        origins = list(browser_origins(store))
        if self.media_base_url is not None:
            base = urlsplit(self.media_base_url)
            origins.append(f"{base.scheme}://{base.netloc}")
        self.browser_origins: tuple[str, ...] = tuple(dict.fromkeys(origins))
        """Where browsers reach the store (see :func:`~web.object_store.browser_origins`)
        and the media base URL's origin: what the pages' CSP must let them connect to and
        load images from."""

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """See :meth:`~web.media.MediaStore.start` (the store itself needs no opening; on
        S3 the POST policy signer is built)."""
        if self._s3_signer is not None:
            await self._s3_signer.open()
        await self.scratch.start()
        await self.renditions.start()

    async def close(self) -> None:
        """See :meth:`~web.media.MediaStore.close`."""
        await self.renditions.close()
        await self.scratch.close()

    async def ping(self) -> None:
        """One request to the store, for readiness: a HEAD of an object that is never
        written (its "not found" is the store answering).

        :raises StoreUnavailable: it does not answer, or refuses the credentials.
        """
        with contextlib.suppress(FileNotFoundError, NotFoundError), reaching_store("ping"):
            await obstore.head_async(self.store, _PING_PATH)

    # --- the upload ---------------------------------------------------------------------

    def new_upload_path(self) -> Path:
        """See :meth:`~web.media.MediaStore.new_upload_path` (local, on the scratch disk)."""
        return self.scratch.new_upload_path()

    async def discard_upload(self, path: Path) -> None:
        """See :meth:`~web.media.MediaStore.discard_upload`."""
        await self.scratch.discard(path)

    async def stage_and_render(
        self, upload: Path | bytes, spec: RenditionSpec, *, room: Hashable = None
    ) -> StagedMedia:
        """See :meth:`~web.media.MediaStore.stage_and_render`: render into a temporary
        folder, then PUT the original and both renditions under their final keys (durable
        when this returns); the folder is removed whatever happens, the objects too on error.

        :raises StoreUnavailable: (503) the store did not take the objects.
        """
        key = new_storage_key()
        folder = self.scratch.staging_folder(key)
        putting = False
        try:
            # The folder is a temporary copy: fsyncs would buy nothing
            # (docs/decisions/0028-object-store-worker-cost.md).
            rendition = await self.renditions.stage_and_render(
                upload, folder, spec, room=room, durable=False
            )
            putting = True
            original = self._attributes(rendition.mime_type, f"{key}.{_extension(rendition)}")
            await self._put_all(
                key,
                [
                    (ORIGINAL, folder / ORIGINAL, original),
                    (DISPLAY_NAME, folder / DISPLAY_NAME, self._rendition_attributes()),
                    (THUMB_NAME, folder / THUMB_NAME, self._rendition_attributes()),
                ],
            )
        except BaseException:
            if putting:
                await self._remove_quietly(key)
            raise
        finally:
            await self.scratch.discard(folder)
        return StagedMedia(key, rendition)

    async def publish(self, staged: StagedMedia) -> None:
        """See :meth:`~web.media.MediaStore.publish`: nothing to do, the committed row made
        the objects reachable."""

    async def discard(self, staged: StagedMedia) -> None:
        """See :meth:`~web.media.MediaStore.discard`: the objects are deleted (if the store
        refuses, the sweeper removes them after the grace)."""
        await self._remove_quietly(staged.key)

    async def delete(self, key: str) -> None:
        """See :meth:`~web.media.MediaStore.delete`: every object of ``key`` (one bulk
        request); a store that does not answer leaves them to the sweeper (no row any more)."""
        await self._remove_quietly(key)

    async def ensure_published(self, key: str, committed: Committed) -> bool:
        """See :meth:`~web.media.MediaStore.ensure_published`: whether the original and both
        renditions exist (written before the row was committed, so there is nothing to finish).

        :raises StoreUnavailable: (503) the store does not answer.
        """
        try:
            with reaching_store("head"):
                await asyncio.gather(
                    *(
                        obstore.head_async(self.store, f"{key}/{name}")
                        for name in (ORIGINAL, DISPLAY_NAME, THUMB_NAME)
                    )
                )
        except (FileNotFoundError, NotFoundError):
            return False
        return True

    async def recover(
        self, committed: Committed, pending_uploads: Committed | None = None
    ) -> tuple[int, int]:
        """See :meth:`~web.media.MediaStore.recover`: the temporary files of dead processes
        on this disk, then (at start-up and at most every ``sweep_period_seconds``) the
        sweep of orphaned objects: keys older than ``orphan_grace_seconds`` without a row,
        and with ``pending_uploads`` direct uploads' bytes as old whose upload is over.

        :returns: (0, removed): temporary folders and orphaned keys removed. A store that
            does not answer skips the sweep until the next call (so a replica starts while
            the store is down, and its uploads answer 503 until it is back).
        """
        _, removed = await self.scratch.recover(_nothing_committed)
        now = self.clock()
        if self._swept_at is not None and now - self._swept_at < self.sweep_period_seconds:
            return 0, removed
        try:
            swept = await self.sweep(committed, now, pending_uploads)
        except StoreUnavailable:
            # Start anyway (readiness says `storage: unavailable`); the next period sweeps.
            logger.warning("orphan sweep skipped: the object store does not answer")
            return 0, removed
        self._swept_at = now
        return 0, removed + swept

    async def sweep(
        self,
        committed: Committed,
        now: float | None = None,
        pending_uploads: Committed | None = None,
    ) -> int:
        """Remove the objects of every key that has no row and whose newest object is older
        than ``orphan_grace_seconds`` (objects whose names are not storage keys are left
        alone); with ``pending_uploads`` (upload ids in, those still issued or processing
        out), also every ``direct/<upload id>`` as old whose upload is over: its bytes are
        deleted after the upload's row is finished, so a store that stopped answering just
        then leaves them to this sweep.

        :returns: the number of keys and direct uploads' objects removed.
        :raises StoreUnavailable: the store does not answer.
        """
        cutoff = (self.clock() if now is None else now) - self.orphan_grace_seconds
        newest: dict[str, float] = {}
        paths: dict[str, list[str]] = {}
        stale_uploads: list[str] = []
        with reaching_store("list"):
            async for batch in obstore.list(self.store, chunk_size=1000):
                for meta in batch:
                    key, slash, rest = meta["path"].partition("/")
                    if key == DIRECT_PREFIX and _KEY_PATTERN.fullmatch(rest):
                        if meta["last_modified"].timestamp() <= cutoff:
                            stale_uploads.append(rest)
                        continue
                    if not slash or _KEY_PATTERN.fullmatch(key) is None:
                        continue
                    paths.setdefault(key, []).append(meta["path"])
                    modified = meta["last_modified"].timestamp()
                    newest[key] = max(newest.get(key, modified), modified)
        old = [key for key, modified in newest.items() if modified <= cutoff]
        orphans: list[str] = []
        for start in range(0, len(old), _COMMITTED_BATCH):
            batch_keys = old[start : start + _COMMITTED_BATCH]
            kept = await committed(batch_keys)
            orphans.extend(key for key in batch_keys if key not in kept)
        for key in orphans:
            with reaching_store("delete"):
                await obstore.delete_async(self.store, paths[key])
        if orphans:
            logger.warning("removed %d orphaned images from the object store", len(orphans))
        finished: list[str] = []
        if pending_uploads is not None:
            for start in range(0, len(stale_uploads), _COMMITTED_BATCH):
                batch_ids = stale_uploads[start : start + _COMMITTED_BATCH]
                pending = await pending_uploads(batch_ids)
                finished.extend(upload_id for upload_id in batch_ids if upload_id not in pending)
            for upload_id in finished:
                await self.delete_upload(upload_id)
            if finished:
                logger.warning("removed %d finished direct uploads' bytes", len(finished))
        return len(orphans) + len(finished)

    # --- direct uploads ---------------------------------------------------------------------

    async def issue_upload(self, grant: UploadGrant) -> UploadTarget:
        """See :meth:`~web.media.MediaStore.issue_upload`, for ``direct/<upload id>``, valid
        until ``grant.expires_at``:

        - S3: a presigned ``POST`` policy (an HTML form) binding the key exactly, the
          ``Content-Type`` to the declared type and ``content-length-range`` to 1..the
          declared size, so the store itself refuses a larger body.
        - GCS, Azure: a presigned ``PUT`` sent with the declared type (Azure: and
          ``x-ms-blob-type: BlockBlob``, which its Put Blob requires); the store does not
          bound its size.

        In both cases :meth:`uploaded_size` and the processing check the bytes that arrived
        (a larger object fails the upload and is deleted): S3-compatible stores that ignore
        the policy's conditions (moto does) are bounded all the same.

        :raises StoreUnavailable: signing needs the store's credentials and they failed.
        """
        seconds = max(1, int(grant.expires_at.timestamp() - self.clock()))
        path = _direct_path(grant.upload_id)
        if self._s3_signer is not None:
            url, fields = await self._s3_signer.sign_post(
                path,
                content_type=grant.content_type,
                max_bytes=max(1, grant.size),
                expires_seconds=seconds,
            )
            return UploadTarget(method="POST", url=url, expires_at=grant.expires_at, fields=fields)
        with reaching_store("sign"):
            url = await obstore.sign_async(self.store, "PUT", path, timedelta(seconds=seconds))
        headers = {"Content-Type": grant.content_type}
        if isinstance(self.store, AzureStore):
            headers[AZURE_BLOB_TYPE_HEADER] = "BlockBlob"
        return UploadTarget(method="PUT", url=url, expires_at=grant.expires_at, headers=headers)

    async def receive_upload_body(
        self,
        upload_id: str,
        body: UploadBody,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """See :meth:`~web.media.MediaStore.receive_upload_body`: never, the client sends
        the bytes to the store.

        :raises ApiError: always, 404 ``not_found``.
        """
        raise ApiError(404, "not_found", "Send this upload's bytes to the URL it was given.")

    async def uploaded_size(self, upload_id: str) -> int | None:
        """See :meth:`~web.media.MediaStore.uploaded_size` (one HEAD request).

        :raises StoreUnavailable: the store does not answer.
        """
        return await self._size(_direct_path(upload_id))

    async def fetch_upload(self, upload_id: str, destination: Path) -> FetchedUpload | None:
        """See :meth:`~web.media.MediaStore.fetch_upload`: the object streamed into
        ``destination`` in pieces of up to :data:`FETCH_CHUNK_BYTES`, each hashed and written
        by one thread hop (so a phone photo is one piece, and no hashing on the event loop).

        :raises StoreUnavailable: the store does not answer (``destination`` removed).
        """
        digest = hashlib.sha256()
        size = 0
        try:
            with reaching_store("get"):
                result = await obstore.get_async(self.store, _direct_path(upload_id))
                writer = await asyncio.to_thread(open, destination, "wb")
                try:
                    async for chunk in result.stream(min_chunk_size=FETCH_CHUNK_BYTES):
                        size += len(chunk)
                        await asyncio.to_thread(_hash_and_write, digest, writer, chunk)
                finally:
                    await asyncio.to_thread(writer.close)
        except (FileNotFoundError, NotFoundError):
            await self.scratch.discard(destination)
            return None
        except BaseException:
            await self.scratch.discard(destination)
            raise
        return FetchedUpload(size, digest.hexdigest())

    async def delete_upload(self, upload_id: str) -> None:
        """See :meth:`~web.media.MediaStore.delete_upload`; missing is fine.

        :raises StoreUnavailable: the store does not answer.
        """
        with contextlib.suppress(FileNotFoundError, NotFoundError), reaching_store("delete"):
            await obstore.delete_async(self.store, _direct_path(upload_id))

    # --- reads ----------------------------------------------------------------------------

    async def rendition(self, key: str, name: str) -> MediaFile | None:
        """See :meth:`~web.media.MediaStore.rendition`: a redirect (presigned GET, or the
        media base URL) to an existing object; None for other names, bad keys or no object.

        :raises StoreUnavailable: (503) the store does not answer.
        """
        if name not in PUBLIC_RENDITIONS or _KEY_PATTERN.fullmatch(key) is None:
            return None
        size = await self._size(f"{key}/{name}")
        if size is None:
            return None
        if self.media_base_url is not None:
            return MediaFile(
                RENDITION_TYPE, size, redirect=f"{self.media_base_url}/{quote(key)}/{name}"
            )
        return await self._signed(f"{key}/{name}", RENDITION_TYPE, size)

    async def original(
        self, key: str, content_type: str, *, disposition: str | None = None
    ) -> MediaFile | None:
        """See :meth:`~web.media.MediaStore.original`: a presigned GET of the object (stored
        with ``Content-Disposition: attachment`` and the key as its name; ``disposition``
        instead on S3, see :meth:`_signed`), or None if it is missing."""
        size = await self._size(f"{key}/{ORIGINAL}")
        if size is None:
            return None
        return await self._signed(f"{key}/{ORIGINAL}", content_type, size, disposition)

    async def open_original(self, key: str, executor: Executor) -> MediaReader | None:
        """See :meth:`~web.media.MediaStore.open_original`: a reader streaming the object
        (``executor`` is not needed: obstore does not block the event loop). Reading it
        again after ``seek(0)`` is a second GET bound to the first one's ETag, so an image
        deleted in between fails that read with FileNotFoundError instead of mixing files."""
        path = f"{key}/{ORIGINAL}"
        try:
            with reaching_store("get"):
                result = await obstore.get_async(self.store, path)
        except (FileNotFoundError, NotFoundError):
            return None
        return ObjectReader(self.store, path, result)

    async def full_size(
        self,
        key: str,
        spec: RenditionSpec,
        committed: Committed,
        *,
        disposition: str | None = None,
    ) -> MediaFile | None:
        """See :meth:`~web.media.MediaStore.full_size`: ``<key>/full.jpg``, rendered on first
        request from the original downloaded into a temporary folder, then uploaded
        (concurrent requests for one key share one render); the presigned GET as in
        :meth:`original`.

        :raises StoreUnavailable: (503) the store does not answer.
        """
        path = f"{key}/{FULL_NAME}"
        size = await self._size(path)
        if size is None:
            size = await self._shared_full_render(key, spec, committed)
            if size is None:
                return None
        return await self._signed(path, RENDITION_TYPE, size, disposition)

    async def _shared_full_render(
        self, key: str, spec: RenditionSpec, committed: Committed
    ) -> int | None:
        """Render ``full.jpg`` once for all concurrent requests of ``key``: its size, bytes,
        or None if the image is gone."""
        shared = self._full_renders.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._render_full(key, spec, committed))
            self._full_renders[key] = shared

            def forget(done: asyncio.Future[int | None]) -> None:
                if self._full_renders.get(key) is done:
                    del self._full_renders[key]
                if not done.cancelled():
                    done.exception()

            shared.add_done_callback(forget)
        return await asyncio.shield(shared)

    async def _render_full(self, key: str, spec: RenditionSpec, committed: Committed) -> int | None:
        folder = self.scratch.staging_folder(f"{key}.full")
        try:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            original = folder / ORIGINAL
            try:
                with reaching_store("get"):
                    result = await obstore.get_async(self.store, f"{key}/{ORIGINAL}")
                    async with aiofiles.open(original, "wb") as out:
                        async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                            await out.write(bytes(chunk))
            except (FileNotFoundError, NotFoundError):
                return None  # deleted meanwhile
            rendered = await self.renditions.render_full(original, folder, spec)
            attributes = self._attributes(RENDITION_TYPE, f"{key}-full.jpg")
            await self._put_all(key, [(FULL_NAME, folder / FULL_NAME, attributes)])
        finally:
            await self.scratch.discard(folder)
        if key not in await committed([key]):
            await self._remove_quietly(key)  # deleted while rendering
            return None
        return rendered.file_bytes

    # --- helpers --------------------------------------------------------------------------

    def _attributes(self, content_type: str, filename: str) -> Attributes:
        return {
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, max-age=3600",
        }

    def _rendition_attributes(self) -> Attributes:
        return {"Content-Type": RENDITION_TYPE, "Cache-Control": self.cache_control}

    async def _put_all(self, key: str, files: list[tuple[str, Path, Attributes]]) -> None:
        """PUT local files as ``<key>/<name>`` concurrently; raises the first failure after
        every PUT has ended (so that none is still writing when the caller cleans up).

        The small files (:data:`PUT_IN_ONE_READ_BYTES`) are all read by one thread hop first
        (an image's three files: one hop instead of four per file)."""
        contents = await asyncio.to_thread(_read_small_files, [path for _, path, _ in files])

        async def put(name: str, path: Path, attributes: Attributes, data: bytes | None) -> None:
            with reaching_store("put"):
                await obstore.put_async(
                    self.store,
                    f"{key}/{name}",
                    file_chunks(path) if data is None else data,
                    attributes=attributes,
                    chunk_size=PUT_CHUNK_BYTES,
                )

        outcomes = await asyncio.gather(
            *(put(*file, data) for file, data in zip(files, contents, strict=True)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _remove_quietly(self, key: str) -> None:
        try:
            with reaching_store("delete"):
                await obstore.delete_async(self.store, [f"{key}/{name}" for name in OBJECT_NAMES])
        except (StoreUnavailable, FileNotFoundError, NotFoundError):
            logger.warning("objects of %s left for the sweeper", key)

    async def _size(self, path: str) -> int | None:
        try:
            with reaching_store("head"):
                meta = await obstore.head_async(self.store, path)
        except (FileNotFoundError, NotFoundError):
            return None
        return int(meta["size"])

    async def _signed(
        self, path: str, content_type: str, size: int, disposition: str | None = None
    ) -> MediaFile:
        """A redirect to a presigned GET of ``path``. With ``disposition`` on S3, the GET
        answers with that ``Content-Disposition`` (and ``content_type``), signed into the URL
        (:meth:`~web.object_store.S3Signer.sign_get`); GCS and Azure sign such parameters
        too, but obstore's ``sign`` takes none, so there the stored header (the key as the
        name) applies."""
        if disposition is not None and self._s3_signer is not None:
            url = await self._s3_signer.sign_get(
                path,
                content_disposition=disposition,
                content_type=content_type,
                expires_seconds=self.url_seconds,
            )
            return MediaFile(content_type, size, redirect=url, redirect_seconds=self.url_seconds)
        with reaching_store("sign"):
            url = await obstore.sign_async(
                self.store, "GET", path, timedelta(seconds=self.url_seconds)
            )
        return MediaFile(content_type, size, redirect=url, redirect_seconds=self.url_seconds)


def _hash_and_write(digest: hashlib._Hash, writer: BinaryIO, chunk: Bytes | bytes) -> None:
    """Add ``chunk`` to ``digest`` and write it (blocking: run in a thread; hashlib releases
    the GIL for large buffers)."""
    digest.update(chunk)
    writer.write(chunk)


def _read_small_files(paths: list[Path]) -> list[bytes | None]:
    """Each file's bytes if it has at most :data:`PUT_IN_ONE_READ_BYTES`, else None (blocking).

    :raises OSError: a file cannot be read.
    """
    contents: list[bytes | None] = []
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read(PUT_IN_ONE_READ_BYTES + 1)
        contents.append(data if len(data) <= PUT_IN_ONE_READ_BYTES else None)
    return contents


def _direct_path(upload_id: str) -> str:
    return f"{DIRECT_PREFIX}/{upload_id}"


def _extension(rendition: RenditionResult) -> str:
    return _EXTENSIONS.get(rendition.mime_type, rendition.format)
