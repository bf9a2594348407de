"""Wire bodies of the image routes: the image object, its pages, the event log, the upload."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from web.wire import Timestamp, WireModel


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
