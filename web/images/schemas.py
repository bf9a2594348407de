"""Wire bodies of the image routes: the image object, its pages, the event log, the uploads."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from web.wire import ErrorDetail, Timestamp, WireModel


class ImageBody(WireModel):
    """The image object: what ``POST .../images`` answers and ``image_added`` carries.

    Rendition URLs are paths relative to the service's base URL; they never change for an
    image and answer 404 once it is deleted.
    """

    id: int = Field(description="Sorts in upload order within the room.")
    seq: int = Field(description="The room event number of its `image_added`.")
    caption: str | None
    url: str = Field(description="Path of the display rendition (JPEG, at most 1600 px).")
    thumb_url: str = Field(description="Path of the thumbnail (JPEG, at most 400 px).")
    width: int
    height: int
    thumb_width: int
    thumb_height: int
    uploader_name: str | None
    participant_id: int | None
    created_at: Timestamp
    status: Literal["approved", "pending"]


class ImagePage(WireModel):
    """A page of images in upload order; ``next_after`` is the ``after`` of the next page."""

    items: list[ImageBody]
    next_after: int | None = Field(description="`null` on the last page.")


class LoggedEvent(WireModel):
    """One entry of a room's event log, as it went out over Socket.IO."""

    seq: int
    # A string, not an enumeration: a new kind of event must not make this answer fail.
    kind: str = Field(
        description="The Socket.IO event name: `image_added`, `image_removed`, `room_updated`, "
        "`room_closed`, `moderation_queue`.",
        examples=["image_added"],
    )
    payload: dict[str, JsonValue] = Field(
        description="The event's argument: the image object (`image_added`), `{id, seq}` "
        "(`image_removed`), the room's settings with `seq` (`room_updated`), `{seq, closed_at}` "
        "(`room_closed`) or `{seq, pending_count}` (`moderation_queue`)."
    )


class EventPage(WireModel):
    """A page of a room's event log after a ``seq``."""

    items: list[LoggedEvent]
    next_after: int | None = Field(description="`null` on the last page.")


class UploadForm(WireModel):
    """``POST /api/rooms/{token}/images``'s ``multipart/form-data`` fields; any other field is
    ignored. (Documentation: the body is streamed by :func:`web.uploads.receive_upload`,
    never parsed whole.)"""

    model_config = ConfigDict(extra="ignore")

    file: bytes = Field(description="One image, its type decided by its bytes.")
    caption: str | None = Field(None, max_length=500, description="Whitespace is folded.")


class UploadDeclaration(WireModel):
    """``POST /api/rooms/{token}/uploads``: the file the client is about to send."""

    filename: str = Field(
        min_length=1, max_length=255, description="The file's name; untrusted, never stored."
    )
    content_type: str = Field(
        max_length=100,
        description="Its MIME type: `image/jpeg`, `image/png`, `image/gif`, `image/webp`, "
        "`image/heic`, `image/heif`, `image/heic-sequence`, `image/heif-sequence` or "
        "`image/avif` (the real type is still read from the bytes).",
        examples=["image/jpeg"],
    )
    size: int = Field(ge=1, le=2**53, description="Its exact length, bytes.")
    caption: str | None = Field(None, description="Whitespace is folded.")
    sha256: str | None = Field(
        None,
        pattern="^[0-9a-fA-F]{64}$",
        description="Hex SHA-256 of the bytes; when given, bytes with another digest are refused.",
    )


class UploadIssued(WireModel):
    """Where and how to send an upload's bytes (``201`` of ``POST .../uploads``)."""

    upload_id: str = Field(description="Opaque, URL-safe.")
    method: Literal["POST", "PUT"] = Field(
        description="`POST`: an HTML form, `fields` then the file as the last field `file`; "
        "`PUT`: the bytes as the body, with `headers`."
    )
    url: str = Field(description="Where to send the bytes (absolute).")
    fields: dict[str, str] = Field(description="Form fields to send, exactly as given (`POST`).")
    headers: dict[str, str] = Field(description="Headers to send, exactly as given (`PUT`).")
    expires_at: Timestamp = Field(description="When `url` stops working.")


class UploadStarted(WireModel):
    """``202`` of ``POST .../uploads/{upload_id}/complete``."""

    upload_id: str
    status: Literal["processing", "done", "failed"] = Field(
        description="`processing` once completed; a repeated call answers the current status."
    )


class UploadState(WireModel):
    """A completed upload's state (``GET .../uploads/{upload_id}``)."""

    upload_id: str
    status: Literal["processing", "done", "failed"]
    image: ImageBody | None = Field(
        description="The stored image (`done`; the room's existing one for bytes it already "
        "held); `null` otherwise, or when the image was deleted since."
    )
    error: ErrorDetail | None = Field(
        description="`failed`: the error a direct `POST .../images` would have answered "
        "(e.g. `file_too_large`, `unsupported_media_type`, `corrupt_image`)."
    )
