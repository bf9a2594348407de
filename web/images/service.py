"""Image rules: upload (stream, render, store, commit, broadcast), listing and deletion."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from starlette.requests import Request

from realtime.bus import RoomEventBus
from web.errors import ApiError
from web.images.repository import DuplicateImage, Image, ImageRepository
from web.images.views import image_view
from web.metrics import Metrics
from web.pipeline import RenditionPool, RenditionSpec
from web.rooms.repository import Participant, Room
from web.rooms.service import RoomService, clean_text
from web.settings import Settings
from web.storage import ORIGINAL, LocalImageStore, new_storage_key
from web.uploads import receive_upload

logger = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 50


class ImageService:
    """Everything that happens to a room's images.

    :param repository: image and event-log storage.
    :param rooms: room rules (open/closed, host key).
    :param store: image files.
    :param renditions: the process pool that makes renditions.
    :param bus: where committed events are published for every replica.
    :param settings: limits and rendition sizes.
    :param metrics: the replica's Prometheus collectors.
    """

    def __init__(
        self,
        repository: ImageRepository,
        rooms: RoomService,
        store: LocalImageStore,
        renditions: RenditionPool,
        bus: RoomEventBus,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.repository = repository
        self.rooms = rooms
        self.store = store
        self.renditions = renditions
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self.spec = RenditionSpec(
            display_max_px=settings.display_max_px,
            thumb_max_px=settings.thumb_max_px,
            max_pixels=settings.max_image_pixels,
        )

    async def upload(
        self, room: Room, participant: Participant | None, request: Request
    ) -> tuple[dict[str, Any], bool]:
        """Receive one image from a multipart request and publish it to the room.

        Acknowledged only once the files and the row are durable; ``image_added`` is published
        after that. The same bytes sent again to the room return the stored image unchanged.

        :returns: (the image object, True if it was created; False for a repeated upload).
        :raises ApiError: 409 room closed; 400 empty/malformed; 413 too large (bytes or
            pixels); 415 not an accepted image type; 422 corrupt; 503 renderers busy.
        """
        started = time.perf_counter()
        try:
            image, created = await self._upload(room, participant, request)
        except ApiError:
            self.metrics.uploads.labels("rejected").inc()
            raise
        if created:
            self.metrics.upload_to_emit_seconds.observe(time.perf_counter() - started)
        self.metrics.uploads.labels("created" if created else "duplicate").inc()
        return image, created

    async def _upload(
        self, room: Room, participant: Participant | None, request: Request
    ) -> tuple[dict[str, Any], bool]:
        self.rooms.require_open(room)
        received = await receive_upload(
            request, self.store.new_upload_path(), max_bytes=self.settings.max_upload_bytes
        )
        key: str | None = None
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
                return image_view(existing), False
            key = new_storage_key()
            staged = await self.store.stage(key, received.path)
            result = await self.renditions.render(staged / ORIGINAL, staged, self.spec)
            image, event = await self.repository.add(
                {
                    "room_id": room.id,
                    "participant_id": participant.id if participant else None,
                    "caption": caption,
                    "storage_key": key,
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
                uploader_name=participant.name if participant else None,
                render_payload=image_view,
                now=self.rooms.clock(),
            )
        except DuplicateImage:
            # A concurrent upload of the same bytes won the race; answer with its image.
            assert key is not None
            await self.store.discard(self.store.staging / key)
            winner = await self.repository.by_sha256(room.id, received.sha256)
            if winner is None:  # deleted in between: vanishingly rare; let the client retry
                raise ApiError(409, "conflict", "Please retry the upload.") from None
            return image_view(winner), False
        except BaseException:
            if key is not None:
                await self.store.discard(self.store.staging / key)
            raise
        finally:
            await self.store.discard(received.path)
        await self.store.publish(key)
        self.metrics.rendition_seconds.observe(result.render_seconds)
        self.metrics.upload_bytes.inc(received.size)
        await self.bus.publish(event)
        logger.info(
            "image stored",
            extra={
                "room_id": room.id,
                "image_id": image.id,
                "bytes": received.size,
                "render_seconds": round(result.render_seconds, 4),
            },
        )
        return event.payload, True

    async def page(self, room: Room, after: str | None, limit: str | None) -> dict[str, Any]:
        """A page of the room's images in upload order: ``{"items": [...], "next_after"}``.

        :param after: only images with a greater id (default: from the start).
        :param limit: page size, 1 to 200 (default 50).
        :raises ApiError: 422 for a non-integer or out-of-range parameter.
        """
        after_id = _int_param("after", after, default=0, low=0, high=2**63 - 1)
        size = _int_param("limit", limit, default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        found = await self.repository.page(room.id, after_id, size + 1)
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
        found = await self.repository.events_after(room.id, after_seq, size + 1)
        items = found[:size]
        return {
            "items": [
                {"seq": event.seq, "kind": event.kind, "payload": event.payload} for event in items
            ],
            "next_after": items[-1].seq if len(found) > size else None,
        }

    async def get(self, room: Room, image_id: str) -> Image:
        """The image ``image_id`` of ``room``; raises ApiError 404 ``image_not_found``."""
        image = None
        if image_id.isdigit() and len(image_id) < 19:
            image = await self.repository.get(room.id, int(image_id))
        if image is None:
            raise ApiError(404, "image_not_found", "This image does not exist in this room.")
        return image

    async def delete(
        self,
        room: Room,
        image_id: str,
        *,
        authorization: str | None,
        participant: Participant | None,
    ) -> None:
        """Delete an image as the host (host key) or as its uploader (participant key).

        :raises ApiError: 404 unknown image; 401 no credentials; 403 neither host nor uploader.
        """
        image = await self.get(room, image_id)
        is_uploader = participant is not None and participant.id == image.participant_id
        if not is_uploader:
            if authorization is None and participant is None:
                raise ApiError(
                    401,
                    "credentials_required",
                    "Deleting needs the host key or the uploader's participant key.",
                )
            if not self.rooms.is_host(room, authorization):
                raise ApiError(403, "forbidden", "Only the host or the uploader may delete this.")
        event = await self.repository.remove(image, now=self.rooms.clock())
        if event is None:
            return
        with contextlib.suppress(OSError):
            await self.store.delete(image.storage_key)
        await self.bus.publish(event)


def _int_param(name: str, raw: str | None, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(422, f"invalid_{name}", f"'{name}' must be an integer from {low} to {high}.")
    return int(raw)
