"""Wire bodies of the admin routes: the room and account lists, an invite."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from web.wire import Timestamp, WireModel

RoomState = Literal["open", "closed", "expired"]


class AdminRoomBody(WireModel):
    """A room as the admin list shows it."""

    token: str
    title: str
    created_at: Timestamp
    expires_at: Timestamp
    state: RoomState = Field(description="`expired` wins over `closed` once it expires.")
    owner_email: str | None = Field(description="Its owner's e-mail, null when unowned.")
    image_count: int = Field(description="Images of every status (approved and pending).")
    stored_bytes: int = Field(
        description="Bytes of its stored originals, the total its byte quota counts."
    )
    participant_count: int = Field(description="Guests who joined.")
    last_activity_at: Timestamp = Field(description="Its newest event, or its creation.")


class AdminRoomList(WireModel):
    """``GET /api/admin/rooms``: newest first."""

    rooms: list[AdminRoomBody]
    next_after: str | None = Field(description="`after` of the next page; null on the last one.")


class AdminAccountBody(WireModel):
    """An account as the admin list shows it."""

    id: int
    email: str
    name: str | None
    is_admin: bool
    disabled: bool
    created_at: Timestamp
    owned_rooms: int = Field(description="Rooms it owns (expired ones too).")


class AdminAccountList(WireModel):
    """``GET /api/admin/accounts``: oldest first."""

    accounts: list[AdminAccountBody]
    next_after: str | None = Field(description="`after` of the next page; null on the last one.")


class InviteBody(WireModel):
    """A new single-use sign-up invite."""

    invite: str = Field(description="The token `POST /api/accounts` takes as `invite`.")
    expires_at: Timestamp
