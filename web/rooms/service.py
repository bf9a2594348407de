"""Room rules: creation, settings, closing, lookup by token, host and participant identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from realtime.bus import RoomEventBus
from realtime.namespace import AccessRefused, Admission, Handshake
from web.database import Database, SQLAlchemyStatements
from web.errors import ApiError
from web.event_log import RoomEvent, log_event, next_seq
from web.images.repository import ImageRepository
from web.rate_limits import RateLimiter
from web.rooms.repository import HostedRoom, HostRole, Participant, Room, RoomRepository
from web.rooms.room_settings import SETTABLE_FIELDS, clean_text
from web.rooms.schemas import RoomChanges, RoomCreation, settings_context
from web.security import (
    digest,
    is_well_formed_token,
    matches,
    new_room_code,
    new_room_token,
    new_secret_key,
    normalize_room_code,
)
from web.settings import Settings
from web.signing import SigningSecret
from web.wire import parse_body


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def room_not_found() -> ApiError:
    """A new 404 ``room_not_found``."""
    return ApiError(404, "room_not_found", "This room does not exist or has expired.")


def passcode_required() -> ApiError:
    """A new 401 ``passcode_required``."""
    return ApiError(401, "passcode_required", "This room needs its passcode: join the room first.")


PARTICIPANT_COOKIE_SALT = "participant-cookie"


def participant_cookie(room: Room) -> str:
    """Name of the HTTP-only cookie that carries a participant's signed identity for
    ``room`` (set by ``POST /api/rooms/{token}/join``, read by the API and the live side)."""
    return f"imageshark_p_{room.id}"


SessionAccount = Callable[[Mapping[str, str]], Awaitable[int | None]]
"""The account whose live session a request's cookies carry, by id, or None
(:meth:`web.accounts.service.AccountService.account_of_cookies`)."""


async def no_session_account(cookies: Mapping[str, str]) -> int | None:
    """A :data:`SessionAccount` for a room service without accounts: nobody is signed in."""
    return None


CODE_ATTEMPTS = 5
"""Room inserts tried with fresh short codes before a code collision is reported."""


HostRight = Literal["moderate", "wall", "own"]
"""What a host action needs: ``moderate`` (the queue, approving, rejecting, deleting photos),
``wall`` (the wall's settings), ``own`` (everything else: other settings, the passcode,
closing, downloads, removing co-hosts)."""
ROLE_RIGHTS: Mapping[HostRole, frozenset[HostRight]] = {
    "owner": frozenset({"moderate", "wall", "own"}),
    "cohost": frozenset({"moderate", "wall"}),
}
"""The rights of each role; the host key has the owner's."""


WALL_FIELDS = frozenset(name for name in SETTABLE_FIELDS if name.startswith("wall_"))
"""The room settings a co-host may change: the wall's."""


def host_key_required() -> ApiError:
    """A new 401 ``host_key_required``: neither a host key nor a live session came."""
    return ApiError(
        401,
        "host_key_required",
        "This needs the room's host key (Authorization: Bearer) or a host's session.",
    )


def forbidden() -> ApiError:
    """A new 403 ``forbidden``: the signed-in account is no host of the room, or its role
    does not allow this."""
    return ApiError(403, "forbidden", "Your account may not do this in this room.")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a room: a participant (by cookie or key), the host, both or neither."""

    participant: Participant | None
    is_host: bool


def room_settings_view(room: Room) -> dict[str, Any]:
    """The room's settings as every client sees them (``room_updated``'s argument, and part
    of the room view). Never includes the passcode or the host key."""
    return {
        "title": room.title,
        "expires_at": room.expires_at.isoformat(),
        "closed": room.closed_at is not None,
        "closed_at": room.closed_at.isoformat() if room.closed_at else None,
        "uploads_open": room.uploads_open,
        "moderation": room.moderation,
        "passcode_required": room.passcode is not None,
        "wall_mode": room.wall_mode,
        "wall_qr_size": room.wall_qr_size,
        "wall_captions": room.wall_captions,
        "wall_blanked": room.wall_blanked,
        "wall_min_seconds": room.wall_min_seconds,
        "wall_intermission_minutes": room.wall_intermission_minutes,
        "wall_intermission_seconds": room.wall_intermission_seconds,
        "max_uploads_per_guest": room.max_uploads_per_guest,
        "max_images": room.max_images,
        "max_bytes": room.max_bytes,
        "require_join": room.require_join,
        "gallery_grace_days": room.gallery_grace_days,
        "downscale_uploads": room.downscale_uploads,
        "keep_location": room.keep_location,
        "wall_show_passcode": room.wall_show_passcode,
    }


class RoomService:
    """Room operations shared by the HTTP API, the pages and the live side.

    :param database: the replica's connection pool: each change's transaction (the room and
        its room event) is opened here.
    :param repository: room and participant storage.
    :param images: image storage, for the counts the room views show.
    :param settings: room lifetime, limits and defaults.
    :param bus: where committed room events are published for every replica.
    :param rate_limits: the join-attempt limits (``"join"`` with a passcode, ``"open_join"``
        without) and the room-creation limit (``"create_room"``).
    :param signing: the key participant cookies are signed with.
    :param session_account: who a live connection's cookies sign in, for admitting the
        room's owner and co-hosts to a passcode room like its host key does.
    :param clock: returns the current UTC time (tests pass a fixed one).
    """

    def __init__(
        self,
        database: Database,
        repository: RoomRepository,
        images: ImageRepository,
        settings: Settings,
        bus: RoomEventBus,
        rate_limits: RateLimiter,
        signing: SigningSecret,
        session_account: SessionAccount = no_session_account,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.repository = repository
        self.images = images
        self.settings = settings
        self.bus = bus
        self.rate_limits = rate_limits
        self.signing = signing
        self.session_account = session_account
        self.clock = clock

    @property
    def longest_lifetime(self) -> timedelta:
        """How far ahead a room's expiry may be set (``IMAGESHARK_ROOM_TTL_HOURS``)."""
        return timedelta(hours=self.settings.room_ttl_hours)

    async def create(
        self, body: Mapping[str, Any], client_address: str, owner_account_id: int | None = None
    ) -> tuple[Room, str]:
        """Create a room from a ``POST /api/rooms`` body; return it with its host key (the
        only time the key is known).

        :param body: the request's JSON object, parsed here as
            :class:`~web.rooms.schemas.RoomCreation` (after the rate limit: every attempt
            counts): ``title`` (required) and any settable field.
        :param client_address: the caller's address, for the room-creation rate limit.
        :param owner_account_id: the signed-in account creating it (its owner), or None.
        :raises ApiError: 422 for a missing title, a bad setting or an unknown field; 429
            ``rate_limited`` (with Retry-After) over ``IMAGESHARK_ROOM_CREATE_RATE_LIMIT``.
        """
        await self.rate_limits.hit("create_room", client_address)
        now = self.clock()
        creation = parse_body(
            RoomCreation, body, context=settings_context(now, self.longest_lifetime)
        )
        values = creation.values()
        values.setdefault("expires_at", now + self.longest_lifetime)
        values.setdefault("max_uploads_per_guest", self.settings.max_uploads_per_guest)
        values.setdefault("max_images", self.settings.max_images_per_room)
        host_key = new_secret_key()
        for attempt in range(CODE_ATTEMPTS):
            try:
                room = await self.repository.create(
                    token=new_room_token(),
                    host_key_hash=digest(host_key),
                    now=now,
                    values={**values, "code": new_room_code()},
                    owner_account_id=owner_account_id,
                )
            except IntegrityError:  # the short code (40 bits) is taken: draw another
                if attempt == CODE_ATTEMPTS - 1:
                    raise
                continue
            return room, host_key
        raise AssertionError("unreachable")

    async def host_role(self, room: Room, account_id: int) -> HostRole | None:
        """The role of the account ``account_id`` in ``room`` (its owner without a query),
        or None when it is none of the room's hosts."""
        if room.owner_account_id == account_id:
            return "owner"
        return await self.repository.host_role(room.id, account_id)

    async def claim(self, room: Room, account_id: int) -> Room:
        """Make the account ``account_id`` the owner of ``room`` (the caller has checked the
        host key). Claiming a room one already owns changes nothing.

        :raises ApiError: 409 ``already_claimed``: another account owns it; 404
            ``room_not_found``: it was removed meanwhile.
        """
        owner = await self.repository.claim(room.id, account_id, self.clock())
        if owner is None:
            raise room_not_found()
        if owner != account_id:
            raise ApiError(409, "already_claimed", "Another account already owns this room.")
        return replace(room, owner_account_id=account_id)

    async def hosted_by(self, account_id: int, room: Room | None = None) -> list[HostedRoom]:
        """The rooms the account owns or co-hosts (expired ones too), newest first; only
        ``room`` when given (empty when the account is none of its hosts)."""
        return await self.repository.hosted_by(account_id, room.id if room else None)

    @staticmethod
    def require_rights_for_changes(role: HostRole, body: Mapping[str, Any]) -> None:
        """Refuse a ``PATCH`` body a co-host may not send: one naming any field but the
        wall's (``wall_*``, :data:`WALL_FIELDS`). The owner may send anything.

        :raises ApiError: 403 ``forbidden``.
        """
        if role != "owner" and not set(body) <= WALL_FIELDS:
            raise forbidden()

    async def update(self, room: Room, body: Mapping[str, Any]) -> Room:
        """Apply a host's ``PATCH`` body (parsed here as :class:`~web.rooms.schemas.RoomChanges`):
        store, log and publish ``room_updated``.

        :raises ApiError: 409 ``room_closed``; 422 bad or unknown field.
        """
        if room.closed_at is not None:
            raise ApiError(409, "room_closed", "This room is closed; its settings are final.")
        changes = parse_body(
            RoomChanges, body, context=settings_context(self.clock(), self.longest_lifetime)
        )
        now = self.clock()
        async with self.database.transaction() as connection:
            current = await self.repository.locked(connection, room.id)
            changed = {
                key: value
                for key, value in changes.values().items()
                if getattr(current, key) != value
            }
            if not changed:
                return current
            updated, event = await self._change_logged(
                connection, room.id, changed, "room_updated", room_settings_view, now
            )
        await self.bus.publish(event)
        return updated

    async def close(self, room: Room) -> Room:
        """Close the room for good: no more joins or uploads. Publishes ``room_closed`` once.

        :raises LookupError: the room no longer exists.
        """
        now = self.clock()
        async with self.database.transaction() as connection:
            current = await self.repository.locked(connection, room.id)
            if current.closed_at is not None:
                return current
            closed, event = await self._change_logged(
                connection,
                room.id,
                {"closed_at": now},
                "room_closed",
                lambda _: {"closed_at": now.isoformat()},
                now,
            )
        await self.bus.publish(event)
        return closed

    async def _change_logged(
        self,
        connection: AsyncConnection,
        room_id: int,
        values: dict[str, Any],
        kind: str,
        view: Callable[[Room], dict[str, Any]],
        now: datetime,
    ) -> tuple[Room, RoomEvent]:
        """Inside ``connection``'s transaction, with the room row locked: take the next
        ``seq``, apply ``values`` to the room and log the ``kind`` event whose payload is
        ``view`` of the changed room plus its ``seq``."""
        seq = await next_seq(connection, room_id)
        changed = await self.repository.change(connection, room_id, values)
        event = RoomEvent(room_id, seq, kind, {**view(changed), "seq": seq})
        await log_event(SQLAlchemyStatements(connection), event, now)
        return changed, event

    async def find(self, token: str) -> Room | None:
        """The live room with ``token``; None when malformed, unknown or expired."""
        if not is_well_formed_token(token):
            return None
        room = await self.repository.by_token(token)
        if room is None or room.expires_at <= self.clock():
            return None
        return room

    async def find_ended(self, token: str) -> Room | None:
        """The room with ``token`` only if it exists and has expired; None otherwise.

        Lets the HTML pages say "this room has ended" (title and when) where the API keeps
        answering 404 ``room_not_found`` for expired and unknown tokens alike.
        """
        if not is_well_formed_token(token):
            return None
        room = await self.repository.by_token(token)
        if room is None or room.expires_at > self.clock():
            return None
        return room

    async def get_gallery(self, token: str) -> Room:
        """The room with ``token`` if live or in its read-only grace after expiry
        (:meth:`Room.in_grace`), for reading its gallery.

        :raises ApiError: 404 ``room_not_found`` otherwise.
        """
        room = await self.find(token) or await self.find_ended(token)
        if room is None or not (room.expires_at > self.clock() or room.in_grace(self.clock())):
            raise room_not_found()
        return room

    async def get_for_upload(self, token: str) -> Room:
        """Like :meth:`get`, but a room in its read-only grace answers 409 ``room_ended``.

        :raises ApiError: 404 ``room_not_found``; 409 ``room_ended``.
        """
        room = await self.find(token)
        if room is None:
            ended = await self.find_ended(token)
            if ended is not None and ended.in_grace(self.clock()):
                raise ApiError(409, "room_ended", "This room has ended: its gallery is read-only.")
            raise room_not_found()
        return room

    async def find_by_code(
        self, code: str, client_address: str, *, include_ended: bool = False
    ) -> Room | None:
        """The live room whose short code is ``code`` (any case); None when malformed, unknown
        or expired (an expired one is returned too with ``include_ended``, for the page that
        says the room ended).

        Every lookup counts against the ``code_lookup`` limit of ``client_address``
        (``IMAGESHARK_OPEN_JOIN_RATE_LIMIT``): codes carry only 40 bits, so guessing must be
        slow. :raises ApiError: 429 ``rate_limited`` over that limit.
        """
        await self.rate_limits.hit("code_lookup", client_address)
        normalized = normalize_room_code(code)
        if normalized is None:
            return None
        room = await self.repository.by_code(normalized)
        if room is None or (room.expires_at <= self.clock() and not include_ended):
            return None
        return room

    async def get(self, token: str) -> Room:
        """Like :meth:`find`, but raises ApiError 404 ``room_not_found`` instead of None."""
        room = await self.find(token)
        if room is None:
            raise room_not_found()
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
        return scheme.lower() == "bearer" and RoomService.is_host_key(room, key.strip())

    @staticmethod
    def is_host_key(room: Room, key: object) -> bool:
        """Whether ``key`` is this room's host key (compared in constant time)."""
        return isinstance(key, str) and 0 < len(key) <= 128 and matches(key, room.host_key_hash)

    @staticmethod
    def require_host(room: Room, authorization: str | None) -> None:
        """Raise ApiError 401 without credentials, 403 with a wrong host key."""
        if not authorization:
            raise host_key_required()
        if not RoomService.is_host(room, authorization):
            raise ApiError(403, "wrong_host_key", "That host key does not belong to this room.")

    async def join(
        self,
        room: Room,
        name: object,
        passcode: object,
        client_address: str,
        current: Participant | None = None,
    ) -> tuple[Participant, str]:
        """Register a participant under a display name; return it with a new bearer key.

        A caller that already is one of the room's participants (``current``, from its cookie
        or key) stays that participant, renamed and with a new key: joining again neither
        loses the ownership of earlier photos nor starts the per-guest quota afresh.

        :param passcode: what the guest typed, checked when the room has a passcode.
        :param client_address: the caller's address, for the join-attempt rate limit.
        :param current: the participant the request already identifies, if any.
        :raises ApiError: 422 bad name; 409 room closed; 401 ``passcode_required``;
            403 ``wrong_passcode``; 429 ``rate_limited`` (with Retry-After).
        """
        self.require_open(room)
        clean_name = self.clean_name(name)
        if current is not None:
            key = new_secret_key()
            renamed = await self.repository.rekey_participant(
                current, name=clean_name, key_hash=digest(key)
            )
            return renamed, key
        if room.passcode is None:
            # Each fresh participant starts a new per-guest quota: bound how many one
            # address registers.
            await self.rate_limits.hit("open_join", f"{room.id}:{client_address}")
        else:
            await self.rate_limits.hit("join", f"{room.id}:{client_address}")
            if passcode is None or passcode == "":
                raise passcode_required()
            # Passcodes are printable (room_settings), so anything else is simply wrong; a lone
            # surrogate could not even be hashed.
            if (
                not isinstance(passcode, str)
                or not passcode.strip().isprintable()
                or not matches(passcode.strip(), digest(room.passcode))
            ):
                raise ApiError(403, "wrong_passcode", "That passcode is not this room's.")
        key = new_secret_key()
        participant = await self.repository.add_participant(
            room_id=room.id, name=clean_name, key_hash=digest(key), now=self.clock()
        )
        return participant, key

    def clean_name(self, name: object) -> str:
        """A display name with whitespace folded; raises ApiError 422 ``invalid_name``."""
        clean = clean_text(
            name, field="name", max_chars=self.settings.max_name_chars, required=True
        )
        assert clean is not None
        return clean

    async def rename(self, participant: Participant, name: object) -> Participant:
        """Change a participant's display name (future uploads and the image list show it).

        :raises ApiError: 422 ``invalid_name``.
        """
        return await self.repository.rename_participant(participant, self.clean_name(name))

    def participant_cookie_value(self, participant: Participant) -> str:
        """The signed value of the participant's cookie: its room and id, HMAC-signed with
        the deployment's key (itsdangerous), so the server can trust it without a lookup of
        a secret."""
        return self._cookie_serializer().dumps({"r": participant.room_id, "p": participant.id})

    def _cookie_serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.signing.key, salt=PARTICIPANT_COOKIE_SALT)

    async def participant(
        self, room: Room, *, key: str | None = None, cookie: str | None = None
    ) -> Participant | None:
        """The participant of ``room`` identified by a bearer ``key`` (header) or a signed
        ``cookie``; None when neither identifies one of this room's participants."""
        if key and len(key) <= 128:
            return await self.repository.participant_by_key_hash(room.id, digest(key))
        if cookie and len(cookie) <= 512:
            try:
                data = self._cookie_serializer().loads(
                    cookie, max_age=int(self.longest_lifetime.total_seconds()) + 86_400
                )
            except BadSignature:
                return None
            if not isinstance(data, dict) or data.get("r") != room.id:
                return None
            participant_id = data.get("p")
            if isinstance(participant_id, int) and not isinstance(participant_id, bool):
                return await self.repository.participant_by_id(room.id, participant_id)
        return None

    async def admit_live(self, handshake: Handshake) -> Admission | None:
        """Admit a live (Socket.IO) connection to the room of ``handshake.token``: the live
        side's :data:`realtime.namespace.ResolveRoom`.

        A passcode room admits only a client that presents its host key, a participant key,
        the room's signed participant cookie or the session cookie of one of its hosts. A
        connection without the host key whose session cookie is a host's (in any room) is
        admitted as host by that session (:attr:`Admission.host_account_id`), so removing that
        co-host demotes it.

        :returns: the admission; None when the token is malformed, unknown or expired.
        :raises AccessRefused: ``passcode_required`` for anyone else in a passcode room.
        :raises sqlalchemy.exc.DBAPIError: the database failed or is unreachable.
        """
        room = await self.find(handshake.token)
        if room is None:
            return None
        if self.is_host_key(room, handshake.host_key):
            return Admission(room.id, room.last_seq)
        host_account_id = await self._session_host(room, handshake)
        if (
            room.passcode is not None
            and host_account_id is None
            and not await self._is_live_participant(room, handshake)
        ):
            raise AccessRefused("passcode required: join the room first", "passcode_required")
        return Admission(room.id, room.last_seq, host_account_id)

    async def image_count(self, room: Room, status: str = "approved") -> int:
        """How many images of ``status`` (``"approved"``: what the room shows; ``"pending"``:
        the moderation queue) the room holds now."""
        return await self.images.count(room.id, status)

    async def upload_count(self, room: Room, participant: Participant) -> int:
        """How many images (approved or pending) ``participant`` has in the room now."""
        return await self.images.count_uploads(room.id, participant.id)

    async def _is_live_participant(self, room: Room, handshake: Handshake) -> bool:
        participant = await self.participant(
            room,
            key=handshake.participant_key,
            cookie=handshake.cookies.get(participant_cookie(room)),
        )
        return participant is not None

    async def _session_host(self, room: Room, handshake: Handshake) -> int | None:
        # Most connections are guests without a session cookie: no query for them.
        if not handshake.cookies:
            return None
        account_id = await self.session_account(handshake.cookies)
        if account_id is None or await self.host_role(room, account_id) is None:
            return None
        return account_id

    @staticmethod
    def admits(room: Room, viewer: Viewer) -> bool:
        """Whether ``viewer`` may read the room: it has no passcode, or the viewer is one of
        its participants or its host."""
        return room.passcode is None or viewer.participant is not None or viewer.is_host

    @staticmethod
    def require_viewer(room: Room, viewer: Viewer) -> None:
        """Raise ApiError 401 ``passcode_required`` when the room has a passcode and the
        caller is neither one of its participants nor its host."""
        if not RoomService.admits(room, viewer):
            raise passcode_required()
