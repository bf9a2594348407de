"""Wire bodies of the room routes: settings in and out, room views, participants, links.

The request models check their fields with :mod:`web.rooms.room_settings` (the same codes and
messages as ever: ``422 invalid_<field>``, ``unknown_field``); their declared types are what
the OpenAPI document publishes. Checks that need the time read it from the parse context
(:func:`settings_context`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from web.accounts.schemas import MAX_EMAIL_CHARS, invalid_email, normalise_email
from web.errors import ApiError
from web.rooms.room_settings import (
    MAX_BYTES_QUOTA,
    MAX_GRACE_DAYS,
    MAX_QUOTA,
    MAX_TITLE_CHARS,
    PASSCODE_CHARS,
    WALL_INTERMISSION_MINUTES,
    WALL_INTERMISSION_SECONDS,
    WALL_MIN_SECONDS,
    clean_text,
    validate_room_settings,
)
from web.wire import Timestamp, WireModel

Moderation = Literal["off", "approve"]
WallMode = Literal["spotlight", "grid"]
WallQrSize = Literal["off", "small", "medium", "large"]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS)]
Passcode = Annotated[str, Field(min_length=PASSCODE_CHARS[0], max_length=PASSCODE_CHARS[1])]
Quota = Annotated[int, Field(ge=1, le=MAX_QUOTA)]
ByteQuota = Annotated[int, Field(ge=1, le=MAX_BYTES_QUOTA)]
WallMinSeconds = Annotated[int, Field(ge=WALL_MIN_SECONDS[0], le=WALL_MIN_SECONDS[1])]
IntermissionMinutes = Annotated[int, Field(ge=0, le=WALL_INTERMISSION_MINUTES[1])]
IntermissionSeconds = Annotated[
    int, Field(ge=WALL_INTERMISSION_SECONDS[0], le=WALL_INTERMISSION_SECONDS[1])
]
GraceDays = Annotated[int, Field(ge=0, le=MAX_GRACE_DAYS)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def unchanged(description: str | None = None) -> Any:
    """An optional request field: absent means "leave as it is" (not null, which only the
    nullable fields accept). Read the fields given with ``model_dump(exclude_unset=True)``."""
    return Field(None, description=description, json_schema_extra=_no_default)


def settings_context(now: datetime, longest_lifetime: timedelta) -> dict[str, Any]:
    """The parse context of :class:`RoomCreation` and :class:`RoomChanges`.

    :param now: the current UTC time (``expires_at`` must be after it).
    :param longest_lifetime: how far ahead ``expires_at`` may be.
    """
    return {"now": now, "longest_lifetime": longest_lifetime}


class RoomChanges(WireModel):
    """``PATCH /api/rooms/{token}``: any of the settable fields; what is absent stays.

    Parse with :func:`settings_context` as the context (:func:`web.wire.parse_body`).
    """

    title: Title = unchanged()
    uploads_open: bool = unchanged()
    moderation: Moderation = unchanged()
    passcode: Passcode | Literal[""] | None = unchanged(description='`null` or `""` removes it.')
    expires_at: datetime = unchanged(
        description="In the future, at most `IMAGESHARK_ROOM_TTL_HOURS` from now."
    )
    wall_mode: WallMode = unchanged()
    wall_qr_size: WallQrSize = unchanged()
    wall_captions: bool = unchanged()
    wall_blanked: bool = unchanged()
    wall_min_seconds: WallMinSeconds = unchanged()
    wall_intermission_minutes: IntermissionMinutes = unchanged(description="1-60, or 0 for off.")
    wall_intermission_seconds: IntermissionSeconds = unchanged()
    max_uploads_per_guest: Quota | None = unchanged(description="`null`: no limit.")
    max_images: Quota | None = unchanged(description="`null`: no limit.")
    max_bytes: ByteQuota | None = unchanged(description="`null`: no limit.")
    require_join: bool = unchanged()
    gallery_grace_days: GraceDays | None = unchanged(description="1-90; `0` or `null`: off.")
    downscale_uploads: bool = unchanged()
    keep_location: bool = unchanged()
    wall_show_passcode: bool = unchanged()

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any, info: ValidationInfo) -> Any:
        # The project's own checks, for their codes and messages; the types then hold.
        if not isinstance(data, dict):
            return data
        context = info.context or {}
        return validate_room_settings(
            cls._defaults(data), now=context["now"], longest_lifetime=context["longest_lifetime"]
        )

    @staticmethod
    def _defaults(data: dict[str, Any]) -> dict[str, Any]:
        # What the checks see for fields the body left out (nothing here: they stay).
        return data

    def values(self) -> dict[str, Any]:
        """The settings the body named, column name to clean value."""
        return self.model_dump(exclude_unset=True)


class RoomCreation(RoomChanges):
    """``POST /api/rooms``: a title and any other settable field (defaults otherwise)."""

    title: Title

    @staticmethod
    def _defaults(data: dict[str, Any]) -> dict[str, Any]:
        return {"title": None, **data}  # a missing title is refused as invalid_title


class RoomSettings(WireModel):
    """A room's settings as every client sees them (``room_updated``, and in each view)."""

    title: str
    expires_at: Timestamp
    closed: bool
    closed_at: Timestamp | None
    uploads_open: bool
    moderation: Moderation
    passcode_required: bool
    wall_mode: WallMode
    wall_qr_size: WallQrSize
    wall_captions: bool
    wall_blanked: bool
    wall_min_seconds: int
    wall_intermission_minutes: int
    wall_intermission_seconds: int
    max_uploads_per_guest: int | None
    max_images: int | None
    max_bytes: int | None
    require_join: bool
    gallery_grace_days: int | None
    downscale_uploads: bool
    keep_location: bool
    wall_show_passcode: bool


class RoomView(RoomSettings):
    """``GET /api/rooms/{token}``: the room's public view (never the host key or passcode)."""

    token: str = Field(description="The join token: 24 URL-safe characters, 144 random bits.")
    code: str | None = Field(description="The short code guests may type (`/j/{code}`).")
    created_at: Timestamp
    join_url: str = Field(description="Absolute URL guests open; what the QR code encodes.")
    join_url_reachable: bool
    join_url_warning: str | None
    wall_url: str
    host_url: str
    card_url: str
    qr_png_url: str
    qr_svg_url: str
    qr_modules: int = Field(description="Width of the join URL's QR code, quiet zone included.")
    image_count: int
    last_seq: int = Field(description="Sequence number of the room's newest event.")


class MemberRoomView(RoomView):
    """The public view plus the passcode, for the host or a participant of a room whose wall
    shows its passcode (``wall_show_passcode``)."""

    passcode: str


class HostRoomView(RoomView):
    """The host's view: the public view, the passcode in clear, the moderation queue's length,
    the original bytes the room holds, the caller's role and whether an account owns the
    room."""

    passcode: str | None
    pending_count: int
    stored_bytes: int
    role: Literal["owner", "cohost"] = Field(
        description="The caller's role: `owner` (the host key, or the owner's session) or "
        "`cohost` (a co-host's session, which may moderate and set the wall only)."
    )
    owned: bool = Field(
        description="Whether the room belongs to an account (else it may be claimed)."
    )


class CreatedRoom(HostRoomView):
    """``POST /api/rooms``'s answer: the host's view and the host key (only ever sent here)."""

    host_key: str = Field(description="The host's secret (43 characters); keep it.")


class JoinRequest(WireModel):
    """``POST /api/rooms/{token}/participants``; parse with :func:`name_context`.

    Other fields are ignored, as they always were. The passcode is passed on as sent: the room
    decides (:meth:`web.rooms.service.RoomService.join`), so a room without one ignores it and
    one with a passcode refuses anything but the right text (``403 wrong_passcode``).
    """

    model_config = ConfigDict(extra="ignore")

    name: str = Field(
        min_length=1, description="Display name (1 to `IMAGESHARK_MAX_NAME_CHARS`, 60)."
    )
    passcode: Annotated[JsonValue, WithJsonSchema({"type": ["string", "null"]})] = Field(
        None, description="Only where the room has one."
    )

    @model_validator(mode="before")
    @classmethod
    def _name_given(cls, data: Any, info: ValidationInfo) -> Any:
        return _with_clean_name(data, info)


class Rename(WireModel):
    """``PATCH /api/rooms/{token}/me``; parse with :func:`name_context`. Other fields are
    ignored, as they always were."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(
        min_length=1, description="The new display name (1 to `IMAGESHARK_MAX_NAME_CHARS`, 60)."
    )

    @model_validator(mode="before")
    @classmethod
    def _name_given(cls, data: Any, info: ValidationInfo) -> Any:
        return _with_clean_name(data, info)


def name_context(max_chars: int) -> dict[str, Any]:
    """The parse context of :class:`JoinRequest` and :class:`Rename`.

    :param max_chars: longest display name, in characters (``IMAGESHARK_MAX_NAME_CHARS``).
    """
    return {"max_name_chars": max_chars}


def _with_clean_name(data: Any, info: ValidationInfo) -> Any:
    if not isinstance(data, dict):
        return data
    max_chars = (info.context or {})["max_name_chars"]
    name = clean_text(data.get("name"), field="name", max_chars=max_chars, required=True)
    return {**data, "name": name}


class Joined(WireModel):
    """The new (or re-keyed) participant; the key also works as ``X-Participant-Key``."""

    id: int
    name: str
    participant_key: str


class Me(WireModel):
    """``GET /api/rooms/{token}/me``: the caller as a participant and their upload quota."""

    id: int
    name: str
    upload_count: int
    max_uploads: int | None = Field(description="`null`: unlimited.")
    uploads_left: int | None = Field(description="`null`: unlimited.")


class LinkRequest(WireModel):
    """``POST /api/rooms/{token}/links``: the download to sign (other fields are ignored, as
    they always were)."""

    model_config = ConfigDict(extra="ignore")

    path: str = Field(
        description="This room's `/api/rooms/{token}/archive.zip`, or an image's "
        "`.../images/{id}/original` or `.../images/{id}/download`."
    )

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("path"), str):
            raise invalid_link_path()
        return data


def invalid_link_path() -> ApiError:
    """A new 422 ``invalid_path`` (not a download path of the room)."""
    return ApiError(
        422,
        "invalid_path",
        "Links can be made for this room's archive.zip, or an image's original or "
        "full-resolution download only.",
    )


class SignedLink(WireModel):
    """A presigned download URL (``<path>?signature=...``), valid for 10 minutes."""

    url: str
    expires_at: Timestamp


class InviteRequest(WireModel):
    """``POST /api/rooms/{token}/cohost-invites``: whom the link is for, optionally."""

    email: str | None = Field(
        None,
        max_length=MAX_EMAIL_CHARS,
        description="The invitee's address, kept for mailing the link later (not sent yet); "
        "stored trimmed, domain lower-cased.",
    )

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("email") is None:
            return data
        email = normalise_email(data["email"])
        if email is None or len(email) > MAX_EMAIL_CHARS:
            raise invalid_email()
        return {**data, "email": email}


class IssuedInviteBody(WireModel):
    """A new invite link: ``url`` holds its single-use token (answered only here)."""

    invite_id: int
    url: str = Field(description="`{public base URL}/invites/{token}`: single use.")
    expires_at: Timestamp


class PendingInviteBody(WireModel):
    """An invite neither used nor expired."""

    invite_id: int
    email: str | None
    created_at: Timestamp
    expires_at: Timestamp


class HostBody(WireModel):
    """One of a room's hosts."""

    account_id: int
    role: Literal["owner", "cohost"]
    name: str | None
    email: str | None = Field(description="In the owner's view only; null for co-hosts.")
    since: Timestamp


class HostList(WireModel):
    """``GET /api/rooms/{token}/cohosts``: the hosts, and for the owner the pending invites."""

    hosts: list[HostBody]
    invites: list[PendingInviteBody] | None = Field(
        description="The owner's view only; null for co-hosts."
    )
