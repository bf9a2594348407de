"""Direct uploads: the client sends the bytes where the media store says, then asks the
service to process them (docs/API.md, "Direct uploads").

1. :meth:`DirectUploads.create` applies the rules of ``POST .../images`` (room, viewer,
   pause, join, rate limit) and the declared size and type, stores an ``issued`` row
   (:mod:`web.images.upload_repository`) and asks the media store for the target
   (:meth:`web.media.MediaStore.issue_upload`). On the local folder the target is the
   service's own signed ``PUT`` endpoint, whose body :meth:`DirectUploads.receive_body`
   keeps (:meth:`web.media.MediaStore.receive_upload_body`).
2. :meth:`DirectUploads.complete` checks that bytes arrived, moves the row to
   ``processing`` (one conditional UPDATE: a second ``complete`` changes nothing) and starts
   a task of this object, which :meth:`DirectUploads.close` drains at shutdown; or, with a
   queue (``IMAGESHARK_RENDITION_QUEUE=redis``), enqueues the upload's job, which an
   ``imageshark worker`` runs through :meth:`DirectUploads.process` (:mod:`web.worker`).
3. The task copies the bytes into a local file and hands them to
   :meth:`web.images.service.ImageService.ingest`, the admission path of a direct POST
   (quotas, moderation, de-duplication by SHA-256, render, commit, ``image_added``); then
   the row is ``done`` with the image, or ``failed`` with the error a POST would have
   answered, and the bytes are deleted.

A restart never loses an upload after ``202``: the row says ``processing`` until the image
is committed and the row updated, the bytes stay until then, and :meth:`DirectUploads.start`
resumes every ``processing`` row (periodically too, :meth:`DirectUploads.resume_stale`, for
replicas that died and were not restarted). Processing one upload twice (a resume racing a
live replica) stores one image: the room's unique SHA-256 turns the second into the first's
image, with no event. Uploads never completed are deleted after their URL's expiry
(:meth:`DirectUploads.sweep`, in the replica's periodic work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import DBAPIError

from web.errors import ApiError
from web.images.repository import ImageRepository
from web.images.service import ImageService
from web.images.upload_repository import DONE, FAILED, ISSUED, PROCESSING, Upload, UploadRepository
from web.images.views import image_view
from web.media import MediaStore, UploadGrant, UploadTarget
from web.rooms.repository import Room, RoomRepository
from web.rooms.room_settings import clean_text
from web.rooms.service import RoomService, Viewer
from web.settings import Settings
from web.signing import SigningSecret
from web.uploads import (
    DISK_FULL_ERRNOS,
    ReceivedUpload,
    UploadBody,
    insufficient_storage,
    too_large,
)

logger = logging.getLogger(__name__)

UPLOAD_URL_SECONDS = 15 * 60
"""How long an issued upload's URL takes bytes (and the upload may be completed), seconds:
long enough for a 40 MiB photo on a slow phone link, short enough that a leaked URL soon
stops working (the S3 presigned-URL guidance is minutes)."""
DECLARED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "image/heif",
        "image/heic-sequence",
        "image/heif-sequence",
        "image/avif",
    }
)
"""The ``content_type`` values an upload may declare: the accepted image types of
:mod:`web.pipeline.formats` (the real type is still decided by the bytes)."""
SIGNATURE_SALT = "direct-upload-body"
RESUME_AFTER_SECONDS = 600.0
"""A ``processing`` upload whose processing was last (re)started this long ago is taken over
by the periodic work of any replica (its own replica died without restarting)."""
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between attempts when processing meets a passing fault (renderers busy, disk full,
database down), seconds; the last repeats until :data:`RETRY_FOR_SECONDS`."""
RETRY_FOR_SECONDS = 600.0
_TRANSIENT_STATUSES = frozenset({503, 507})


@dataclass(frozen=True, slots=True)
class IssuedUpload:
    """What ``POST .../uploads`` answers: the upload's id and where to send its bytes."""

    upload_id: str
    target: UploadTarget


def upload_not_found() -> ApiError:
    """A new 404 ``upload_not_found``."""
    return ApiError(404, "upload_not_found", "This upload does not exist in this room.")


def _url_expired() -> ApiError:
    return ApiError(410, "upload_url_expired", "This upload's URL has expired; ask for a new one.")


class UploadQueue(Protocol):
    """Where :meth:`DirectUploads.complete` sends uploads to process when they are rendered
    by ``imageshark worker`` processes (:class:`web.images.rendition_queue.RenditionQueue`)."""

    async def enqueue(self, upload_id: str) -> bool:
        """Durably enqueue one upload's job; False when one is already waiting or running.

        :raises ApiError: 503 ``busy`` when the queue is unreachable (nothing enqueued).
        """
        ...


class DirectUploads:
    """Direct uploads of one replica: issuing, receiving (local folder), completing,
    processing in tasks it owns, status, and the sweep of expired ones.

    :param images: the image rules (:meth:`ImageService.check_upload`,
        :meth:`ImageService.ingest`).
    :param repository: the ``uploads`` rows.
    :param image_rows: image reads, for a done upload's image.
    :param rooms: room rules and the clock.
    :param room_rows: room and participant reads, for processing after a restart.
    :param media: where the bytes go (:meth:`MediaStore.issue_upload` and the rest).
    :param signing: the key the service's own upload URLs are signed with.
    :param settings: the upload limits and rendition timeout.
    :param queue: None: this object processes the uploads itself, in tasks
        (``IMAGESHARK_RENDITION_QUEUE=inline``); else each completed upload is enqueued there
        and a worker calls :meth:`process`.
    """

    def __init__(
        self,
        images: ImageService,
        repository: UploadRepository,
        image_rows: ImageRepository,
        rooms: RoomService,
        room_rows: RoomRepository,
        media: MediaStore,
        signing: SigningSecret,
        settings: Settings,
        queue: UploadQueue | None = None,
    ) -> None:
        self.queue = queue
        self.images = images
        self.repository = repository
        self.image_rows = image_rows
        self.rooms = rooms
        self.room_rows = room_rows
        self.media = media
        self.signing = signing
        self.settings = settings
        self._running: dict[str, asyncio.Task[bool]] = {}
        self._closing = asyncio.Event()

    # --- requests --------------------------------------------------------------------------

    async def create(
        self,
        room: Room,
        viewer: Viewer,
        declared: dict[str, Any],
        client_address: str,
        service_url: Callable[[str, str], str],
    ) -> IssuedUpload:
        """Issue an upload: the rules of a direct POST, then the declared size and type, then
        an ``issued`` row and the media store's target.

        :param declared: the parsed body: ``filename``, ``content_type``, ``size`` (bytes),
            ``caption`` and ``sha256`` (each None when absent).
        :param service_url: ``(upload_id, signature) -> URL`` of the service's own ``PUT``
            endpoint for the bytes.
        :raises ApiError: as :meth:`ImageService.check_upload`; 413 ``file_too_large``; 415
            ``unsupported_media_type``; 422 ``invalid_caption``.
        """
        await self.images.check_upload(room, viewer, client_address)
        if declared["size"] > self.settings.max_upload_bytes:
            raise too_large(self.settings.max_upload_bytes)
        content_type = str(declared["content_type"]).strip().lower()
        if content_type not in DECLARED_TYPES:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"{declared['content_type']!r} is not an image type this service accepts.",
            )
        caption = clean_text(
            declared.get("caption"),
            field="caption",
            max_chars=self.settings.max_caption_chars,
            required=False,
        )
        sha256 = declared.get("sha256")
        upload_id = secrets.token_urlsafe(16)
        now = self.rooms.clock()
        expires_at = now + timedelta(seconds=UPLOAD_URL_SECONDS)
        await self.repository.insert(
            {
                "id": upload_id,
                "room_id": room.id,
                "participant_id": viewer.participant.id if viewer.participant else None,
                "by_host": viewer.is_host,
                "content_type": content_type,
                "size": declared["size"],
                "caption": caption,
                "sha256": sha256.lower() if isinstance(sha256, str) else None,
                "created_at": now,
                "expires_at": expires_at,
            }
        )
        signature = self._serializer().dumps([upload_id, room.id])
        target = await self.media.issue_upload(
            UploadGrant(
                upload_id=upload_id,
                content_type=content_type,
                size=declared["size"],
                expires_at=expires_at,
                service_url=service_url(upload_id, signature),
            )
        )
        return IssuedUpload(upload_id, target)

    async def receive_body(
        self,
        room: Room,
        upload_id: str,
        signature: str | None,
        body: Callable[[Upload], UploadBody],
        client_address: str,
    ) -> ReceivedUpload:
        """Keep the bytes ``PUT`` to the service's own URL of an issued upload.

        The signed URL alone authorises it (no cookie or key): it names this upload of this
        room and works until the upload is completed or expires.

        :param body: makes the request's body reader for the upload's declared type and size.
        :returns: what was kept (size, SHA-256).
        :raises ApiError: 403 ``upload_url_invalid`` (no or a wrong signature, another
            room's or upload's); 410 ``upload_url_expired`` or ``upload_completed``; 400
            ``sha256_mismatch``; as :meth:`web.uploads.receive_raw` (413, 415, 400, 408,
            507); 429 too many uploads in progress from ``client_address``.
        """
        try:
            signed = self._serializer().loads(signature or "")
        except BadSignature:
            signed = None
        if signed != [upload_id, room.id]:
            raise ApiError(403, "upload_url_invalid", "This upload URL is not valid.")
        upload = await self.repository.get(upload_id, room.id)
        if upload is None:
            raise _url_expired()  # signed by us, so it existed: swept after its expiry
        if upload.status != ISSUED:
            raise ApiError(
                410, "upload_completed", "This upload is already completed; its URL is used up."
            )
        if upload.expires_at <= self.rooms.clock():
            raise _url_expired()
        with self.images.upload_slots.hold(client_address):
            try:
                received = await self.media.receive_upload_body(
                    upload_id,
                    body(upload),
                    max_bytes=self.settings.max_upload_bytes,
                    idle_timeout=self.settings.upload_idle_timeout_seconds,
                    min_free_bytes=self.settings.min_free_disk_bytes,
                )
            except OSError as exc:
                if exc.errno in DISK_FULL_ERRNOS:
                    raise insufficient_storage() from exc
                raise
        if upload.sha256 is not None and received.sha256 != upload.sha256:
            await self.media.delete_upload(upload_id)
            raise ApiError(
                400, "sha256_mismatch", "The body's SHA-256 is not the one the upload declared."
            )
        if await self.repository.get(upload_id) is None:  # swept while streaming
            await self.media.delete_upload(upload_id)
            raise _url_expired()
        return received

    async def complete(self, room: Room, upload_id: str) -> str:
        """Start processing an upload whose bytes arrived; harmless when repeated.

        :returns: the upload's status: ``"processing"`` (just started, or still), or
            ``"done"``/``"failed"`` for an upload completed before.
        :raises ApiError: 404 ``upload_not_found``; 409 ``upload_not_received``; 410
            ``upload_url_expired`` (never completed, past its expiry); 503 ``busy`` (with a
            queue) the job could not be enqueued: the upload stays ``issued``.
        """
        upload = await self._upload(room, upload_id)
        if upload.status != ISSUED:
            return upload.status
        if upload.expires_at <= self.rooms.clock():
            raise _url_expired()
        if await self.media.uploaded_size(upload_id) is None:
            raise ApiError(
                409, "upload_not_received", "No bytes were received for this upload yet."
            )
        if await self.repository.start_processing(upload_id, self.rooms.clock()):
            if self.queue is None:
                self._spawn(upload_id)
                return PROCESSING
            try:
                await self.queue.enqueue(upload_id)
            except ApiError:
                # Back to issued, for the client's next complete. Should this fail too, the
                # row stays processing and the periodic resume enqueues it.
                await self.repository.unstart(upload_id)
                raise
            return PROCESSING
        return (await self._upload(room, upload_id)).status  # a concurrent complete won

    async def state(self, room: Room, upload_id: str) -> dict[str, Any]:
        """``{"upload_id", "status", "image", "error"}`` of a completed upload (``image``
        the image object when done; ``error`` ``{"code", "message"}`` when failed).

        :raises ApiError: 404 ``upload_not_found``; 409 ``upload_not_completed``.
        """
        upload = await self._upload(room, upload_id)
        if upload.status == ISSUED:
            raise ApiError(409, "upload_not_completed", "This upload has not been completed yet.")
        image = None
        if upload.status == DONE and upload.image_id is not None:
            found = await self.image_rows.get(room.id, upload.image_id)
            image = image_view(found) if found is not None else None
        error = None
        if upload.status == FAILED:
            error = {"code": upload.error_code, "message": upload.error_message}
        return {"upload_id": upload.id, "status": upload.status, "image": image, "error": error}

    async def _upload(self, room: Room, upload_id: str) -> Upload:
        upload = await self.repository.get(upload_id, room.id) if _well_formed(upload_id) else None
        if upload is None:
            raise upload_not_found()
        return upload

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.signing.key, salt=SIGNATURE_SALT)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every ``processing`` upload (an earlier process stopped before finishing
        them); in the lifespan, once the media store has started."""
        for upload_id in await self.repository.processing():
            if self.queue is None:
                self._spawn(upload_id)
            elif not await self._enqueued(upload_id):
                return

    async def resume_stale(self) -> int:
        """Resume the ``processing`` uploads no replica has touched for
        :data:`RESUME_AFTER_SECONDS` (their replica died); returns how many were taken."""
        before = self.rooms.clock() - timedelta(seconds=RESUME_AFTER_SECONDS)
        taken = 0
        for upload_id in await self.repository.processing(claimed_before=before):
            if self.queue is not None:
                if not await self._enqueued(upload_id):
                    break
                taken += 1
            elif upload_id not in self._running:
                self._spawn(upload_id)
                taken += 1
        return taken

    async def _enqueued(self, upload_id: str) -> bool:
        """Enqueue a ``processing`` upload again (a crash may have come between its move to
        processing and its job; an upload whose job waits or runs is left alone); False when
        the queue is unreachable (the next period tries again)."""
        assert self.queue is not None
        try:
            await self.queue.enqueue(upload_id)
        except ApiError:
            logger.warning("the rendition queue is unreachable; resuming uploads later")
            return False
        return True

    async def pending(self, upload_ids: Iterable[str]) -> set[str]:
        """Those of ``upload_ids`` whose upload is not over (issued or processing): the
        media store's sweep keeps their bytes and removes the others' (``recover``)."""
        return await self.repository.pending(upload_ids)

    async def sweep(self) -> int:
        """Delete the bytes of the uploads never completed whose URL expired, then their
        rows; returns how many rows went.

        Bytes first: nothing else ever deletes ``direct/<upload id>`` of a row that is gone,
        so a store that stops answering half-way leaves the rest of the rows (and their
        bytes) to the next sweep instead of leaving objects nobody removes.

        :raises StoreUnavailable: the object store stopped answering (the rows whose bytes
            were deleted before are removed first).
        """
        expired = await self.repository.expired(self.rooms.clock())
        gone: list[str] = []
        try:
            for upload_id in expired:
                await self.media.delete_upload(upload_id)
                gone.append(upload_id)
        finally:
            removed = await self.repository.remove_expired(gone)
        return removed

    async def close(self) -> None:
        """Let the uploads being processed finish (up to the rendition timeout and a
        margin), then cancel what is left (still ``processing``: resumed at the next start).
        Uploads waiting to retry after a passing fault stop waiting at once."""
        self._closing.set()
        tasks = list(self._running.values())
        if tasks:
            _, pending = await asyncio.wait(
                tasks, timeout=self.settings.rendition_timeout_seconds + 30
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every upload being processed now has finished (tests, benchmarks)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _spawn(self, upload_id: str) -> None:
        if upload_id in self._running or self._closing.is_set():
            return
        task = asyncio.create_task(self._process(upload_id), name=f"upload {upload_id}")
        self._running[upload_id] = task
        task.add_done_callback(lambda _: self._running.pop(upload_id, None))

    # --- processing ------------------------------------------------------------------------

    async def process(self, upload_id: str) -> str:
        """Process one upload as a worker's job (a coroutine): what the tasks of the inline
        mode do, retrying passing faults for up to :data:`RETRY_FOR_SECONDS`.

        :returns: the row's status afterwards: ``"done"`` or ``"failed"``; ``"processing"``
            when it stopped early (:meth:`close`, or a fault that left the row as it was):
            the job should run again; ``"gone"`` when the upload no longer exists.
        """
        if await self._process(upload_id):
            return DONE  # this job marked it: no need to read it again
        upload = await self.repository.get(upload_id)
        return upload.status if upload is not None else "gone"

    async def _process(self, upload_id: str) -> bool:
        """Process one ``processing`` upload to ``done`` or ``failed``, retrying passing
        faults; never raises (a bug fails the upload with 500 and is logged).

        :returns: True when this call marked the upload ``done``; False otherwise (failed,
            finished elsewhere, gone, or left processing by :meth:`close`).
        """
        started = self.rooms.clock()
        attempt = 0
        while True:
            try:
                return await self._attempt(upload_id)
            except ApiError as exc:
                passing = exc.status in _TRANSIENT_STATUSES
                if not passing or self._gave_up(started):
                    await self._fail(upload_id, exc.status, exc.code, exc.message)
                    return False
            except (DBAPIError, ConnectionError, OSError) as exc:
                logger.warning("upload %s: processing failed for now: %s", upload_id, exc)
                if self._gave_up(started):
                    await self._fail(
                        upload_id, 503, "busy", "The upload could not be processed; send it again."
                    )
                    return False
            except Exception:
                logger.exception("upload %s: processing failed", upload_id)
                await self._fail(
                    upload_id, 500, "internal_error", "Something went wrong on our side."
                )
                return False
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            if self._closing.is_set():
                return False  # still processing: the next start resumes it

    def _gave_up(self, started: datetime) -> bool:
        return (self.rooms.clock() - started).total_seconds() >= RETRY_FOR_SECONDS

    async def _attempt(self, upload_id: str) -> bool:
        """One try at processing: True when it marked the upload ``done``."""
        upload = await self.repository.claim(upload_id, self.rooms.clock())
        if upload is None:
            return False  # finished by another replica, or its room deleted
        room = await self.rooms.find(upload.room_token)
        if room is None:
            raise ApiError(404, "room_not_found", "This room does not exist or has expired.")
        participant = (
            await self.room_rows.participant_by_id(room.id, upload.participant_id)
            if upload.participant_id is not None
            else None
        )
        viewer = Viewer(participant=participant, is_host=upload.by_host)
        destination = self.media.new_upload_path()
        fetched = await self.media.fetch_upload(upload_id, destination)
        if fetched is None:
            current = await self.repository.get(upload_id)
            if current is None or current.status != PROCESSING:
                return False  # another replica finished it and deleted the bytes
            raise ApiError(409, "upload_not_received", "The upload's bytes are gone.")
        limit = min(upload.size, self.settings.max_upload_bytes)
        if fetched.size > limit:
            await self.media.discard_upload(destination)
            if limit < self.settings.max_upload_bytes:
                raise ApiError(
                    413, "file_too_large", f"The file is larger than the {limit} bytes declared."
                )
            raise too_large(self.settings.max_upload_bytes)
        received = ReceivedUpload(
            path=destination,
            body=None,
            size=fetched.size,
            sha256=fetched.sha256,
            filename=None,
            fields={"caption": upload.caption} if upload.caption is not None else {},
        )
        image, created = await self.images.ingest(room, viewer, received)
        marked = await self.repository.finish(upload_id, int(image["id"]))
        await self.media.delete_upload(upload_id)
        logger.info(
            "direct upload processed",
            extra={"room_id": room.id, "image_id": image["id"], "new_image": created},
        )
        return marked

    async def _fail(self, upload_id: str, status: int, code: str, message: str) -> None:
        """Record the failure, then delete the bytes (a database fault leaves both for the
        next resume)."""
        try:
            await self.repository.fail(upload_id, status, code, message)
        except (DBAPIError, ConnectionError, OSError):
            logger.warning("upload %s: failure not recorded; resumed later", upload_id)
            return
        with contextlib.suppress(OSError):
            await self.media.delete_upload(upload_id)
        logger.info("direct upload failed", extra={"upload_id": upload_id, "code": code})


def _well_formed(upload_id: str) -> bool:
    return 16 <= len(upload_id) <= 64 and all(
        char.isascii() and (char.isalnum() or char in "-_") for char in upload_id
    )
