"""Image rules: upload (stream, render, store, commit, broadcast), listing and deletion."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from realtime.bus import RoomEventBus
from web.database import Database, SQLAlchemyStatements, Statements
from web.errors import ApiError
from web.event_log import RoomEvent, events_after, log_event, next_seq
from web.images.archive import room_archive
from web.images.repository import (
    APPROVED,
    PENDING,
    DuplicateImage,
    Image,
    ImageRepository,
    is_duplicate_image,
)
from web.images.views import image_view
from web.media import MediaFile, MediaStore, StagedMedia
from web.metrics import Metrics
from web.pipeline import RenditionSpec
from web.rate_limits import RateLimiter
from web.rooms.repository import LockedRoom, Room, lock_room
from web.rooms.room_settings import clean_text
from web.rooms.service import RoomService, Viewer
from web.settings import Settings
from web.upload_slots import UploadSlots
from web.uploads import DISK_FULL_ERRNOS, ReceivedUpload, UploadBody, insufficient_storage

logger = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 50


class ImageService:
    """Everything that happens to a room's images.

    :param database: the replica's connection pool: each change's transaction (the image
        and its room event) is opened here.
    :param repository: image and event-log storage.
    :param rooms: room rules (open/closed, host key).
    :param media: image files and the renderers that make them (stage, publish, delete).
    :param bus: where committed events are published for every replica.
    :param settings: limits and rendition sizes.
    :param metrics: the replica's Prometheus collectors.
    :param rate_limits: the upload rate limit (``"upload"``).
    :param on_pending: called with the room after a photo entered its moderation queue
        (committed and published): the owner's digest
        (:meth:`~web.accounts.pending_digest.PendingDigest.photo_pending`); its failure is
        logged, never the upload's.
    """

    def __init__(
        self,
        database: Database,
        repository: ImageRepository,
        rooms: RoomService,
        media: MediaStore,
        bus: RoomEventBus,
        settings: Settings,
        metrics: Metrics,
        rate_limits: RateLimiter,
        on_pending: Callable[[Room], Awaitable[None]] | None = None,
    ) -> None:
        self.on_pending = on_pending
        self.database = database
        self.rate_limits = rate_limits
        self.upload_slots = UploadSlots(settings.max_concurrent_uploads_per_address)
        self.repository = repository
        self.rooms = rooms
        self.media = media
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self.spec = RenditionSpec(
            display_max_px=settings.display_max_px,
            thumb_max_px=settings.thumb_max_px,
            max_pixels=settings.max_image_pixels,
            max_decode_bytes=settings.max_decode_bytes,
        )

    async def upload(
        self, room: Room, viewer: Viewer, body: UploadBody, client_address: str
    ) -> tuple[dict[str, Any], bool]:
        """Receive one image from an upload body and publish it to the room.

        Acknowledged only once the files and the row are durable; ``image_added`` (or, in a
        moderated room, ``moderation_queue``) is published after that. The same bytes sent
        again to the room return the stored image unchanged, whatever the limits.

        :param viewer: the uploader (participant and/or host; the host skips moderation, the
            pause and the rate limit).
        :param body: the request's body, not read yet (e.g. :class:`web.uploads.MultipartBody`);
            read only once the room, the viewer and the rate limit have let it through.
        :param client_address: the caller's address, the rate-limit key without a participant.
        :returns: (the image object, True if it was created; False for a repeated upload).
        :raises ApiError: 409 room closed or uploads paused; 401 passcode required;
            429 rate limited, a quota reached or too many uploads in progress from
            ``client_address``; 400 empty/malformed; 408 the body stalled; 413 too large
            (bytes or pixels); 415 not an accepted image type; 422 corrupt; 503 renderers
            busy; 507 the disk is (nearly) full.
        """

        async def held() -> tuple[dict[str, Any], bool]:
            with self.upload_slots.hold(client_address):
                return await self._upload(room, viewer, body, client_address)

        return await self._measured(held())

    async def ingest(
        self, room: Room, viewer: Viewer, received: ReceivedUpload
    ) -> tuple[dict[str, Any], bool]:
        """Store an upload whose bytes were received some other way (a direct upload's,
        fetched from the media store, see :mod:`web.images.direct`), through the same
        admission, de-duplication, render, commit and broadcast as :meth:`upload`.

        The room's pre-checks and the rate limit are not applied again (the caller applied
        them when the upload was asked for, with :meth:`check_upload`); the room's state as
        locked in the upload's transaction is (closed, paused, join required, quotas,
        moderation).

        :param received: the bytes (a file from :meth:`MediaStore.new_upload_path`, consumed
            or removed whatever happens), their size and SHA-256; ``fields["caption"]`` is
            the caption.
        :returns: as :meth:`upload`.
        :raises ApiError: as :meth:`upload` from 400 ``empty_file`` on (no 408).
        """
        return await self._measured(self._ingest(room, viewer, received))

    async def check_upload(self, room: Room, viewer: Viewer, client_address: str) -> None:
        """Whether ``viewer`` may upload to ``room`` now, counting one upload against the
        rate limit (what :meth:`upload` checks before reading a body).

        :raises ApiError: 409 ``room_closed`` or ``uploads_paused``; 401
            ``passcode_required`` or ``join_required``; 429 ``rate_limited``.
        """
        self.rooms.require_open(room)
        self.rooms.require_viewer(room, viewer)
        participant = viewer.participant
        if not viewer.is_host:
            _require_uploads_open(room.uploads_open)
            _require_participant(room.require_join, participant)
            if participant is not None:
                await self.rate_limits.hit("upload", f"{room.id}:{participant.id}")
            else:
                await self.rate_limits.hit("anonymous_upload", f"{room.id}:{client_address}")

    async def _measured(
        self, work: Coroutine[Any, Any, tuple[dict[str, Any], bool]]
    ) -> tuple[dict[str, Any], bool]:
        """Run an upload's ``work``, counting it in the metrics; a full disk is 507."""
        started = time.perf_counter()
        try:
            try:
                image, created = await work
            except OSError as exc:  # the disk filled up while staging or rendering
                if exc.errno not in DISK_FULL_ERRNOS:
                    raise
                raise insufficient_storage() from exc
        except ApiError:
            self.metrics.uploads.labels("rejected").inc()
            raise
        if created:
            self.metrics.upload_to_emit_seconds.observe(time.perf_counter() - started)
        self.metrics.uploads.labels("created" if created else "duplicate").inc()
        return image, created

    async def _upload(
        self, room: Room, viewer: Viewer, body: UploadBody, client_address: str
    ) -> tuple[dict[str, Any], bool]:
        await self.check_upload(room, viewer, client_address)
        received = await body.receive(
            self.media.new_upload_path(),
            max_bytes=self.settings.max_upload_bytes,
            idle_timeout=self.settings.upload_idle_timeout_seconds,
            min_free_bytes=self.settings.min_free_disk_bytes,
        )
        return await self._ingest(room, viewer, received)

    async def _ingest(
        self, room: Room, viewer: Viewer, received: ReceivedUpload
    ) -> tuple[dict[str, Any], bool]:
        participant = viewer.participant
        leftover = received.path  # a spilled body file, until it is moved into staging
        staged: StagedMedia | None = None
        try:
            if received.size == 0:
                raise ApiError(400, "empty_file", "The file is empty.")
            caption = clean_text(
                received.fields.get("caption"),
                field="caption",
                max_chars=self.settings.max_caption_chars,
                required=False,
            )
            existing = await self.repository.by_sha256(room.id, received.sha256)
            if existing is not None:
                if await self.media.ensure_published(
                    existing.storage_key, self.repository.existing_keys
                ):
                    return image_view(existing), False
                # Its files are gone for good: remove it (image_removed) and store these bytes.
                logger.warning(
                    "image without files removed",
                    extra={"room_id": room.id, "image_id": existing.id},
                )
                await self._remove(existing)
            staged = await self.media.stage_and_render(
                received.content,
                # Read before the upload's transaction: a change racing it may apply next time.
                dataclasses.replace(self.spec, keep_location=room.keep_location),
                room=room.id,
            )
            leftover = None  # consumed by the staging
            result = staged.rendition
            image, event = await self._store(
                {
                    "room_id": room.id,
                    "participant_id": participant.id if participant else None,
                    "caption": caption,
                    "storage_key": staged.key,
                    "sha256": received.sha256,
                    "mime_type": result.mime_type,
                    "original_bytes": received.size,
                    "original_width": result.original_width,
                    "original_height": result.original_height,
                    "width": result.display_width,
                    "height": result.display_height,
                    "thumb_width": result.thumb_width,
                    "thumb_height": result.thumb_height,
                },
                viewer=viewer,
                now=self.rooms.clock(),
            )
        except DuplicateImage:
            # A concurrent upload of the same bytes won the race; answer with its image.
            assert staged is not None
            await self.media.discard(staged)
            winner = await self.repository.by_sha256(room.id, received.sha256)
            if winner is None:  # deleted in between: vanishingly rare; let the client retry
                raise ApiError(409, "conflict", "Please retry the upload.") from None
            return image_view(winner), False
        except BaseException:
            if staged is not None:
                await self.media.discard(staged)
            raise
        finally:
            if leftover is not None:
                await self.media.discard_upload(leftover)
        await self.media.publish(staged)
        self.metrics.rendition_seconds.observe(result.render_seconds)
        self.metrics.upload_bytes.inc(received.size)
        await self.bus.publish(event)
        if image.status == PENDING and self.on_pending is not None:
            try:
                await self.on_pending(room)
            except Exception:
                logger.warning("pending photo hook failed", exc_info=True)
        logger.info(
            "image stored",
            extra={
                "room_id": room.id,
                "image_id": image.id,
                "bytes": received.size,
                "render_seconds": round(result.render_seconds, 4),
            },
        )
        return image_view(image), True

    async def _store(
        self, values: dict[str, Any], *, viewer: Viewer, now: datetime
    ) -> tuple[Image, RoomEvent]:
        """Insert an image and its room event in one transaction, under the room row's lock,
        once :meth:`_admit` took it: ``image_added`` for an approved image,
        ``moderation_queue`` (with the new queue length) for a pending one.

        :param values: image columns except ``id``, ``seq``, ``status`` and ``created_at``.
        :raises ApiError: the room refuses it (see :meth:`_admit`); nothing is stored.
        :raises DuplicateImage: the room already has an image with the same ``sha256``.
        :raises LookupError: the room was deleted meanwhile.
        """
        room_id = values["room_id"]
        participant = viewer.participant
        try:
            async with self.database.direct_transaction() as statements:
                locked = await lock_room(statements, room_id)
                status = await self._admit(
                    statements, room_id, locked, viewer, values["original_bytes"]
                )
                image = await self.repository.insert(
                    statements,
                    values,
                    seq=locked.seq,
                    status=status,
                    now=now,
                    uploader_name=participant.name if participant else None,
                )
                if status == APPROVED:
                    event = RoomEvent(room_id, locked.seq, "image_added", image_view(image))
                else:
                    event = await self._queue_event(statements, room_id, locked.seq)
                await log_event(statements, event, now)
        except IntegrityError as exc:
            if is_duplicate_image(exc):
                raise DuplicateImage from exc
            raise
        return image, event

    async def _admit(
        self,
        statements: Statements,
        room_id: int,
        locked: LockedRoom,
        viewer: Viewer,
        size: int,
    ) -> str:
        """Whether the room, as locked in the upload's transaction, takes ``size`` bytes from
        ``viewer``, and with which status: ``"approved"``, or ``"pending"`` in a moderated
        room; the host skips the pause, the quotas and moderation.

        :raises ApiError: 409 ``room_closed`` or ``uploads_paused``; 401 ``join_required``;
            429 ``room_storage_full``, ``room_quota_reached`` or ``guest_quota_reached``.
        """
        participant = viewer.participant
        if locked.closed_at is not None:
            raise ApiError(409, "room_closed", "This room is closed to new photos.")
        if viewer.is_host:
            return APPROVED
        _require_uploads_open(locked.uploads_open)
        _require_participant(locked.require_join, participant)
        if locked.max_bytes is not None and locked.stored_bytes + size > locked.max_bytes:
            raise ApiError(
                429,
                "room_storage_full",
                f"This room is full: it holds its limit of {_megabytes(locked.max_bytes)} "
                "of photos.",
            )
        if locked.max_images is not None and locked.stored_images >= locked.max_images:
            raise ApiError(
                429,
                "room_quota_reached",
                f"This room is full: it holds its limit of {locked.max_images} photos.",
            )
        limit = locked.max_uploads_per_guest
        if (
            participant is not None
            and limit is not None
            and await self.repository.uploader_image_count(statements, room_id, participant.id)
            >= limit
        ):
            raise ApiError(
                429,
                "guest_quota_reached",
                f"You have uploaded {limit} photos, the most one guest may add here.",
            )
        return PENDING if locked.moderation == "approve" else APPROVED

    async def _queue_event(self, statements: Statements, room_id: int, seq: int) -> RoomEvent:
        """The ``moderation_queue`` event at ``seq``, with the queue length as the
        transaction of ``statements`` sees it."""
        pending = await self.repository.pending_count(statements, room_id)
        return RoomEvent(room_id, seq, "moderation_queue", {"seq": seq, "pending_count": pending})

    async def page(
        self,
        room: Room,
        after: str | None,
        limit: str | None,
        *,
        status: str | None = APPROVED,
        participant_id: int | None = None,
    ) -> dict[str, Any]:
        """A page of the room's images in upload order: ``{"items": [...], "next_after"}``.

        :param after: only images with a greater id (default: from the start).
        :param limit: page size, 1 to 200 (default 50).
        :param status: ``"approved"`` (the room's images), ``"pending"`` (the moderation
            queue) or None (any: with ``participant_id``, a guest's own uploads).
        :param participant_id: only this participant's uploads.
        :raises ApiError: 422 for a non-integer or out-of-range parameter.
        """
        after_id = _int_param("after", after, default=0, low=0, high=2**63 - 1)
        size = _int_param("limit", limit, default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        found = await self.repository.page(
            room.id, after_id, size + 1, status=status, participant_id=participant_id
        )
        items = found[:size]
        more = len(found) > size
        return {
            "items": [image_view(image) for image in items],
            "next_after": items[-1].id if more else None,
        }

    async def events(self, room: Room, after: str | None, limit: str | None) -> dict[str, Any]:
        """A page of the room's event log: ``{"items": [{"seq", "kind", "payload"}],
        "next_after": seq or null}``, for clients that saw a gap in ``seq``.

        :raises ApiError: 422 for a non-integer or out-of-range parameter.
        """
        after_seq = _int_param("after", after, default=0, low=0, high=2**63 - 1)
        size = _int_param("limit", limit, default=MAX_PAGE, low=1, high=MAX_PAGE)
        found = await events_after(self.database, room.id, after_seq, size + 1)
        items = found[:size]
        return {
            "items": [
                {"seq": event.seq, "kind": event.kind, "payload": event.payload} for event in items
            ],
            "next_after": items[-1].seq if len(found) > size else None,
        }

    async def get(self, room: Room, image_id: str) -> Image:
        """The image ``image_id`` of ``room``, any status; raises ApiError 404
        ``image_not_found``."""
        image = None
        # ASCII only: str.isdigit() and int() also take "²", "①" or Arabic-Indic digits.
        if image_id.isascii() and image_id.isdigit() and len(image_id) < 19:
            image = await self.repository.get(room.id, int(image_id))
        if image is None:
            raise image_not_found()
        return image

    async def rendition(self, key: str, name: str) -> MediaFile | None:
        """A published (or staged, see :meth:`web.media.MediaStore.rendition`) rendition file.

        :param key: the image's storage key (from its URL).
        :param name: the rendition's file name (``display.jpg``, ``thumb.jpg``).
        :returns: the file, or None when there is none by that key and name.
        """
        return await self.media.rendition(key, name)

    async def full_size(self, image: Image, *, disposition: str | None = None) -> MediaFile | None:
        """The image at full resolution, rendered on first request and kept.

        :param disposition: the ``Content-Disposition`` it is offered with (see
            :meth:`web.media.MediaStore.full_size`).
        :returns: the JPEG, or None when the image was deleted meanwhile (what was rendered
            for it is removed).
        :raises ApiError: 503 renderers busy; OSError from the disk.
        """
        return await self.media.full_size(
            image.storage_key, self.spec, self.repository.existing_keys, disposition=disposition
        )

    async def original(self, image: Image, *, disposition: str | None = None) -> MediaFile | None:
        """The file as uploaded (GPS tags blanked unless the room keeps locations), or None
        when it is missing from storage.

        :param disposition: the ``Content-Disposition`` it is offered with (see
            :meth:`web.media.MediaStore.original`)."""
        return await self.media.original(
            image.storage_key, image.mime_type, disposition=disposition
        )

    def archive(self, room: Room) -> AsyncIterator[bytes]:
        """The room's ZIP archive as it is produced (see :func:`web.images.archive.room_archive`):
        chunks of up to 256 KiB, approved originals in upload order and ``index.csv``."""
        return room_archive(room.id, self.repository, self.media)

    async def visible(self, room: Room, image_id: str, viewer: Viewer) -> Image:
        """The image if ``viewer`` may see it: approved ones for every viewer, pending ones
        for the host and the uploader only (404 to anyone else, as if absent)."""
        image = await self.get(room, image_id)
        if image.status == APPROVED or viewer.is_host:
            return image
        if viewer.participant is not None and viewer.participant.id == image.participant_id:
            return image
        raise image_not_found()

    async def approve(self, room: Room, image_id: str) -> dict[str, Any]:
        """Approve a pending image (host already checked): it reaches every client as
        ``image_added``. Approving an approved image changes nothing.

        :returns: the image object as approved.
        :raises ApiError: 404 unknown image.
        """
        image = await self.get(room, image_id)
        now = self.rooms.clock()
        async with self.database.transaction() as connection:
            seq = await next_seq(connection, image.room_id)
            approved = await self.repository.approve_pending(connection, image.id, seq)
            if approved is None:  # approved already, or gone: nothing happened
                await connection.rollback()
                current = await self.repository.get(image.room_id, image.id)
                if current is None:
                    raise image_not_found()
                return image_view(current)
            event = RoomEvent(image.room_id, seq, "image_added", image_view(approved))
            await log_event(SQLAlchemyStatements(connection), event, now)
        await self.bus.publish(event)
        return image_view(approved)

    async def reject(self, room: Room, image_id: str) -> None:
        """Reject a pending image (host already checked): its files and row are deleted and
        the queue length published.

        :raises ApiError: 404 unknown image; 409 ``not_pending`` for an approved image.
        """
        image = await self.get(room, image_id)
        if image.status != PENDING:
            raise ApiError(
                409, "not_pending", "This image is not waiting for approval; delete it instead."
            )
        await self._remove(image)

    async def delete(self, room: Room, image_id: str, *, viewer: Viewer, credentials: bool) -> None:
        """Delete an image as the host (host key) or as its uploader (participant key).

        :param credentials: whether the request carried any credentials at all.
        :raises ApiError: 404 unknown image; 401 no credentials; 403 neither host nor uploader.
        """
        image = await self.get(room, image_id)
        participant = viewer.participant
        is_uploader = participant is not None and participant.id == image.participant_id
        if not is_uploader and not viewer.is_host:
            if not credentials:
                raise ApiError(
                    401,
                    "credentials_required",
                    "Deleting needs the host key or the uploader's participant key.",
                )
            raise ApiError(403, "forbidden", "Only the host or the uploader may delete this.")
        await self._remove(image)

    async def _remove(self, image: Image) -> None:
        """Delete an image and log its event in one transaction (``image_removed`` for an
        approved image, ``moderation_queue`` for a pending one: guests never saw it), then
        its files, then publish the event; nothing when the image was already gone."""
        now = self.rooms.clock()
        async with self.database.transaction() as connection:
            seq = await next_seq(connection, image.room_id)
            status = await self.repository.delete_row(connection, image.id)
            if status is None:
                await connection.rollback()  # undo the seq bump: nothing happened
                return
            if status == APPROVED:
                event = RoomEvent(image.room_id, seq, "image_removed", {"id": image.id, "seq": seq})
            else:
                event = await self._queue_event(
                    SQLAlchemyStatements(connection), image.room_id, seq
                )
            await log_event(SQLAlchemyStatements(connection), event, now)
        with contextlib.suppress(OSError):
            await self.media.delete(image.storage_key)
        await self.bus.publish(event)


def image_not_found() -> ApiError:
    """A new 404 ``image_not_found``."""
    return ApiError(404, "image_not_found", "This image does not exist in this room.")


def _require_uploads_open(uploads_open: bool) -> None:
    if not uploads_open:
        raise ApiError(409, "uploads_paused", "The host has paused uploads for now.")


def _require_participant(require_join: bool, participant: object) -> None:
    if require_join and participant is None:
        raise ApiError(
            401, "join_required", "The host asks guests to join the room before uploading."
        )


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB" if size >= 1_000_000 else f"{size} bytes"


def _int_param(name: str, raw: str | None, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    # ASCII digits, at most as many as ``high`` has (int() of thousands of digits is slow and
    # raises past 4300); str.isdigit() would also take "²", which int() then refuses.
    if (
        not (raw.isascii() and raw.isdigit())
        or len(raw) > len(str(high))
        or not low <= int(raw) <= high
    ):
        raise ApiError(422, f"invalid_{name}", f"'{name}' must be an integer from {low} to {high}.")
    return int(raw)
