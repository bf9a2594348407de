"""Room rules: creation, lookup by token, host authentication, joining as a participant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from web.errors import ApiError
from web.rooms.repository import Participant, Room, RoomRepository
from web.security import digest, is_well_formed_token, matches, new_room_token, new_secret_key
from web.settings import Settings


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


ROOM_NOT_FOUND = ApiError(404, "room_not_found", "This room does not exist or has expired.")
MAX_TITLE_CHARS = 200


def clean_text(value: object, *, field: str, max_chars: int, required: bool) -> str | None:
    """Validate a short user-supplied text field and return it stripped.

    :param value: the raw JSON or form value.
    :param field: its name, for the error message.
    :param max_chars: longest accepted length, in characters (after stripping).
    :param required: whether an empty or missing value is an error (else it becomes None).
    :raises ApiError: 422 ``invalid_<field>`` when not a string, too long, or required but empty.
    """
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"invalid_{field}", f"The {field} must be a string.")
    text = " ".join(value.split())  # also drops control characters such as newlines
    if not text:
        if required:
            raise ApiError(422, f"invalid_{field}", f"The {field} must not be empty.")
        return None
    if len(text) > max_chars:
        raise ApiError(
            422, f"invalid_{field}", f"The {field} is longer than {max_chars} characters."
        )
    return text


class RoomService:
    """Room operations shared by the HTTP API, the pages and the live side.

    :param repository: room and participant storage.
    :param settings: room lifetime and name limits.
    :param clock: returns the current UTC time (tests pass a fixed one).
    """

    def __init__(
        self,
        repository: RoomRepository,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.settings = settings
        self.clock = clock

    async def create(self, title: object) -> tuple[Room, str]:
        """Create a room; return it with its host key (the only time the key is known).

        :raises ApiError: 422 for a missing, empty or over-long title.
        """
        clean_title = clean_text(title, field="title", max_chars=MAX_TITLE_CHARS, required=True)
        assert clean_title is not None
        host_key = new_secret_key()
        now = self.clock()
        room = await self.repository.create(
            token=new_room_token(),
            host_key_hash=digest(host_key),
            title=clean_title,
            now=now,
            expires_at=now + timedelta(hours=self.settings.room_ttl_hours),
        )
        return room, host_key

    async def find(self, token: str) -> Room | None:
        """The live room with ``token``; None when malformed, unknown or expired."""
        if not is_well_formed_token(token):
            return None
        room = await self.repository.by_token(token)
        if room is None or room.expires_at <= self.clock():
            return None
        return room

    async def get(self, token: str) -> Room:
        """Like :meth:`find`, but raises ApiError 404 ``room_not_found`` instead of None."""
        room = await self.find(token)
        if room is None:
            raise ROOM_NOT_FOUND
        return room

    def require_open(self, room: Room) -> None:
        """Raise ApiError 409 ``room_closed`` unless the room accepts joins and uploads."""
        if not room.is_open(self.clock()):
            raise ApiError(409, "room_closed", "This room is closed to new photos.")

    @staticmethod
    def is_host(room: Room, authorization: str | None) -> bool:
        """Whether an ``Authorization: Bearer <host_key>`` header holds this room's host key."""
        if not authorization:
            return False
        scheme, _, key = authorization.partition(" ")
        return scheme.lower() == "bearer" and bool(key) and matches(key.strip(), room.host_key_hash)

    @staticmethod
    def require_host(room: Room, authorization: str | None) -> None:
        """Raise ApiError 401 without credentials, 403 with a wrong host key."""
        if not authorization:
            raise ApiError(
                401, "host_key_required", "This needs the room's host key (Authorization: Bearer)."
            )
        if not RoomService.is_host(room, authorization):
            raise ApiError(403, "wrong_host_key", "That host key does not belong to this room.")

    async def join(self, room: Room, name: object) -> tuple[Participant, str]:
        """Register a participant under a display name; return it with its bearer key.

        :raises ApiError: 422 for a bad name, 409 when the room is closed.
        """
        self.require_open(room)
        clean_name = clean_text(
            name, field="name", max_chars=self.settings.max_name_chars, required=True
        )
        assert clean_name is not None
        key = new_secret_key()
        participant = await self.repository.add_participant(
            room_id=room.id, name=clean_name, key_hash=digest(key), now=self.clock()
        )
        return participant, key

    async def participant(self, room: Room, key: str | None) -> Participant | None:
        """The participant of ``room`` holding ``key``, or None (no key, or not this room's)."""
        if not key or len(key) > 128:
            return None
        return await self.repository.participant_by_key_hash(room.id, digest(key))
