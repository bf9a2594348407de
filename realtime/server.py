"""The Socket.IO server of one replica, with its namespace and event delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import socketio

from realtime.delivery import LiveDelivery, RoomLog
from realtime.fanout import FanOutCounters, SequentialFanOutManager, register_websockets
from realtime.guard import ConnectionLimits, GuardedServer
from realtime.namespace import ResolveRoom, RoomNamespace
from realtime.presence import Presence


class LiveSide(NamedTuple):
    """One replica's live side: its Socket.IO server, the delivery that emits bus events to
    its clients, the room namespace (start it in the lifespan: :meth:`RoomNamespace.start`),
    and which of its accelerators over library internals are live.
    """

    server: socketio.AsyncServer
    delivery: LiveDelivery
    namespace: RoomNamespace
    #: ``{"fanout": direct broadcast writes on, "guard": per-connection limits on}``; an
    #: accelerator whose probe found an internal missing is False (realtime/internals.py).
    fast_paths: dict[str, bool]


def create_live_server(
    resolve_room: ResolveRoom,
    log: RoomLog,
    presence: Presence,
    *,
    ping_interval: float = 25,
    ping_timeout: float = 20,
    replay_limit: int = 500,
    allowed_origin: Callable[[str | None, dict[str, Any]], bool] | None = None,
    connect_timeout: float = 10,
    fanout_counters: FanOutCounters | None = None,
) -> LiveSide:
    """A Socket.IO server (Engine.IO v4 / Socket.IO v5) with the room namespace registered.

    A handshake (WebSocket or long-polling) whose ``Origin`` header ``allowed_origin`` refuses
    gets 400 before any Socket.IO session exists; one without ``Origin`` (programs, not
    browsers) is accepted. CORS headers go only to allowed origins.

    :param resolve_room: token lookup for the namespace's connect handler.
    :param log: the event log, for replays and catch-up.
    :param presence: counts each room's clients over every replica.
    :param ping_interval: heartbeat interval, seconds (socket.io's default is 25).
    :param ping_timeout: seconds to wait for a heartbeat answer (socket.io's default is 20).
    :param replay_limit: events replayed one by one before a snapshot is sent instead.
    :param allowed_origin: ``(origin, environ) -> bool``, python-engineio's callable form of
        ``cors_allowed_origins`` (``environ["asgi.scope"]`` is the request's ASGI scope);
        None: python-engineio's default, the origin the request was addressed to (its
        scheme and ``Host``). Never ``[]``: python-engineio takes that as "check nothing".
    :param connect_timeout: seconds an Engine.IO session may stay without connecting the
        namespace before it is closed (see realtime/guard.py for the other limits).
    :param fanout_counters: the broadcasts' delivery counters (on the app's registry); None:
        counters of their own, served nowhere.
    :returns: the server, its delivery, its namespace and which accelerators are live.
    """
    server = GuardedServer(
        async_mode="asgi",
        cors_allowed_origins=allowed_origin,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_http_buffer_size=64 * 1024,
        logger=False,
        engineio_logger=False,
        client_manager=SequentialFanOutManager(fanout_counters),
        limits=ConnectionLimits(connect_timeout=connect_timeout),
    )
    direct = register_websockets(server)
    server.guard_websockets()
    delivery = LiveDelivery(server, log, replay_limit)
    namespace = RoomNamespace(resolve_room, delivery, presence)
    server.register_namespace(namespace)
    return LiveSide(server, delivery, namespace, {"fanout": direct, "guard": server.guarded})
