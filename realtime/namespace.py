"""The live side's one namespace: clients join their room by token and receive its events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import socketio

from realtime.delivery import LiveDelivery
from realtime.presence import Presence
from realtime.rooms import room_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a connecting client presents: from its ``auth`` object the room ``token``, the
    ``host_key`` and ``participant_key`` (None unless strings), and its handshake's cookies
    (``{name: value}``)."""

    token: str
    host_key: str | None
    participant_key: str | None
    cookies: Mapping[str, str]

    @classmethod
    def of(cls, auth: dict[str, Any], environ: dict[str, Any]) -> Handshake:
        """Parse the ``auth`` object (whose ``token`` is a string) and the WSGI-style
        ``environ`` of a connection's handshake (its ``HTTP_COOKIE``)."""
        host_key, participant_key = auth.get("host_key"), auth.get("participant_key")
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        return cls(
            token=auth["token"],
            host_key=host_key if isinstance(host_key, str) else None,
            participant_key=participant_key if isinstance(participant_key, str) else None,
            cookies={name: morsel.value for name, morsel in cookies.items()},
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """A connection admitted to a room: the room's id, its ``last_seq`` as just read, and
    the account whose session made the socket a host of the room (an owner's or co-host's
    session cookie, and no host key), or None: the socket is then not host-by-session."""

    room_id: int
    last_seq: int
    host_account_id: int | None = None


ResolveRoom = Callable[[Handshake], Awaitable[Admission | None]]
"""Admits a connection (``RoomService.admit_live``): called with its :class:`Handshake`;
returns its :class:`Admission`, None if the token is unknown, expired or malformed, or raises
:class:`AccessRefused` when the room refuses this client."""


class AccessRefused(Exception):
    """The room exists but refuses this client; the message is shown to it.

    :param message: the refusal's text, shown to the client.
    :param code: its machine-readable code (an HTTP error code of the same refusal, such as
        ``passcode_required``), sent as ``code`` in the ``connect_error`` data.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _refused(message: str, code: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refusal whose ``connect_error`` carries ``message`` and data ``{"message", "code"}``:
    clients decide on ``code``, the text is for people."""
    return socketio.exceptions.ConnectionRefusedError(message, {"message": message, "code": code})


MAX_NAME_CHARS = 60
PRESENCE_INTERVAL_SECONDS = 1.0
"""At most one trailing ``presence`` per room per interval: a join costs a message to every
client, so without coalescing 2000 joins would cost 2000 x 2000 sends."""


def _last_seq(auth: dict[str, Any]) -> int | None:
    value = auth.get("last_seq")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class RoomNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Namespace ``/``: authenticates a connection by room token and places it in that room.

    A client connects with ``auth={"token": <room token>, "name": <display name>,
    "last_seq": <int, optional>}``. An unknown, expired or malformed token refuses the
    connection with a ``connect_error`` saying why: its ``message``, and its data
    ``{"message", "code"}`` with a machine-readable ``code`` (``invalid_auth``,
    ``room_not_found``, ``passcode_required``, ``database_unavailable``). The client is only
    ever in its own room, so it only receives that room's events. With ``last_seq`` it first
    receives the events it missed (or a ``snapshot``), then live ones, with no gap and no
    duplicate.

    Every client of a room receives ``presence {"count"}``, the room's clients over all
    replicas, when it joins and when that count changes (at most once per
    :data:`PRESENCE_INTERVAL_SECONDS`). A client receives no event before the CONNECT packet
    that acknowledges its connection.

    A socket whose host rights come from an account's session (:attr:`Admission.host_account_id`)
    is told ``host_access_revoked {}`` and disconnected when that account stops hosting the
    room (:meth:`host_revoked`, on every replica through the bus).

    :param resolve_room: looks a token up (database), see :data:`ResolveRoom`.
    :param delivery: this replica's event delivery (room membership and replay).
    :param presence: counts each room's clients over every replica.
    """

    def __init__(
        self, resolve_room: ResolveRoom, delivery: LiveDelivery, presence: Presence
    ) -> None:
        super().__init__("/")
        self.resolve_room = resolve_room
        self.delivery = delivery
        self.presence = presence
        self._counts: dict[int, int] = {}  # room -> latest count over all replicas
        self._presence_held: dict[int, bool] = {}  # room -> changed while held
        self._presence_tasks: set[asyncio.Task[None]] = set()
        # room -> {sid: account} of the sockets that are hosts by an account's session
        self._session_hosts: dict[int, dict[str, int]] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        """Admit the client to its room, or refuse with ConnectionRefusedError."""
        if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
            raise _refused(
                "auth must be an object with the room's token: {token, name}", "invalid_auth"
            )
        try:
            found = await self.resolve_room(Handshake.of(auth, environ))
        except AccessRefused as exc:
            raise _refused(str(exc), exc.code) from exc
        except Exception as exc:  # database unreachable: let the client retry shortly
            logger.warning("room lookup failed; connection refused for now", exc_info=True)
            raise _refused(
                "service temporarily unavailable, retry shortly", "database_unavailable"
            ) from exc
        if found is None:
            raise _refused(
                "room not found: the token is unknown or the room has expired", "room_not_found"
            )
        room_id, room_seq = found.room_id, found.last_seq
        if found.host_account_id is not None:
            self._session_hosts.setdefault(room_id, {})[sid] = found.host_account_id
        name = auth.get("name")
        name = " ".join(name.split())[:MAX_NAME_CHARS] if isinstance(name, str) else ""
        await self.save_session(sid, {"room_id": room_id, "name": name})
        # Nothing may reach the client before its CONNECT packet, which python-socketio queues
        # after this handler returns without suspending in between: so every emit for this
        # connection runs in a task (the replay in join's, presence in the one below).
        await self.delivery.join(sid, room_id, room_seq, _last_seq(auth))
        self._spawn(self.presence.changed(room_id))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """Forget the client and tell the room's other clients the new head count."""
        session = await self.get_session(sid)
        room_id = session.get("room_id")
        if room_id is not None:
            self._forget_session_host(sid, room_id)
            self.delivery.leave(sid, room_id)
            await self.presence.changed(room_id)

    def _forget_session_host(self, sid: str, room_id: int) -> None:
        hosts = self._session_hosts.get(room_id)
        if hosts is not None:
            hosts.pop(sid, None)
            if not hosts:
                del self._session_hosts[room_id]

    async def host_revoked(self, room_id: int, account_id: int) -> None:
        """``account_id`` no longer hosts ``room_id`` (:data:`realtime.bus.HostRevoked`): each
        of this replica's sockets in the room that is a host by that account's session gets
        ``host_access_revoked {}`` and is then disconnected (the client does not reconnect by
        itself after a server's disconnect; reconnecting is admitted anew, without host
        rights). Sockets of the host key, participants and other accounts stay."""
        hosts = self._session_hosts.get(room_id, {})
        revoked = [sid for sid, account in hosts.items() if account == account_id]
        for sid in revoked:
            self._forget_session_host(sid, room_id)
            await self.emit("host_access_revoked", {}, to=sid)
            await self.disconnect(sid)

    async def start(self) -> None:
        """Start counting presence (call once the event loop runs, in the app's lifespan)."""
        await self.presence.start(self.delivery, self.room_counted)

    async def room_counted(self, room_id: int, count: int) -> None:
        """Presence reports ``count`` clients in ``room_id`` over all replicas: tell the
        room's clients here (see :meth:`emit_presence`)."""
        if self.delivery.local_count(room_id) == 0:
            self._counts.pop(room_id, None)
            return
        self._counts[room_id] = count
        await self.emit_presence(room_id)

    async def emit_presence(self, room_id: int) -> None:
        """Send ``presence {"count": n}``, the latest count, to the room's clients on this
        replica: at once, then at most once more per :data:`PRESENCE_INTERVAL_SECONDS` for
        changes in between."""
        if room_id in self._presence_held:
            self._presence_held[room_id] = True
            return
        self._presence_held[room_id] = False
        asyncio.get_running_loop().call_later(
            PRESENCE_INTERVAL_SECONDS, self._release_presence, room_id
        )
        await self._send_presence(room_id)

    def _release_presence(self, room_id: int) -> None:
        if self._presence_held.pop(room_id, False):
            self._spawn(self.emit_presence(room_id))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._presence_tasks.add(task)
        task.add_done_callback(self._presence_tasks.discard)

    async def _send_presence(self, room_id: int) -> None:
        if self.delivery.local_count(room_id) == 0:
            self._counts.pop(room_id, None)
            return
        count = self._counts.get(room_id)
        if count is not None:
            await self.emit("presence", {"count": count}, room=room_name(room_id))
