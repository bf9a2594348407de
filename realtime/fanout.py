"""Room broadcasts that cost one socket write per recipient.

python-socketio's ``AsyncManager.emit`` encodes a broadcast once, then starts one asyncio task
per recipient to append the packet to that socket's outgoing queue, where the socket's own
writer task (python-engineio) wakes up, takes it out through ``asyncio.wait_for``, encodes the
Engine.IO packet and hands it to the ASGI server, which frames it and writes it. Per delivery
that is several task wake-ups, a timer and a dozen allocations: on ``bench/live.py`` it was most
of the server's CPU per delivery (see bench/README.md, "Live path").

:class:`SequentialFanOutManager` makes the WebSocket frame once per broadcast (server frames are
not masked, RFC 6455 section 5.1, so every recipient gets the same bytes) and writes it straight
to each recipient's transport when that is provably the same as going through the queue: the
socket is an open WebSocket on uvicorn's ``websockets-sansio`` protocol without extensions
(permessage-deflate off, as ``imageshark serve`` runs it), its transport is not paused by flow
control, and its writer task is idle, waiting on an empty queue, so everything queued before
has been written and nothing can overtake. Any other socket (long-polling, upgrading, a slow
reader, another ASGI server) gets the packet through its queue, as before, in order.

The fast path reads internals of python-socketio, python-engineio, asyncio's queue, uvicorn and
websockets (the socket's queue, the server's WebSocket wrapper, the protocol's state).
:func:`register_websockets` probes every one of them (:func:`internals_missing`) before it
turns the path on; where any is missing the manager's broadcasts go through python-socketio's
own ``emit``, with one warning (docs/decisions/0002-direct-broadcast-fast-path.md). The
versions are bounded in pyproject.toml; tests/realtime/test_fanout.py covers the behaviour and
tests/realtime/test_fast_path_probe.py the probe and the fallback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio
import uvicorn
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as engineio_asgi
from engineio.async_socket import AsyncSocket
from engineio.exceptions import SocketIsClosedError
from prometheus_client import CollectorRegistry, Counter
from socketio import packet
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from realtime.internals import missing_attributes, missing_parameters, report_fallback

# The attribute of an Engine.IO socket that holds the uvicorn protocol of its WebSocket while
# it has one.
_PROTOCOL_ATTRIBUTE = "_imageshark_protocol"


class FanOutCounters:
    """The fan-out's counters, on ``registry`` (the app's, served at ``/metrics``).

    :param registry: where the counters are registered; None: a registry of their own.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        deliveries = Counter(
            "imageshark_fanout_deliveries",
            "Room broadcast packets handed to a client, by path: 'direct' (one write to the "
            "socket) or 'queued' (through the Engine.IO socket's queue and writer task).",
            ["path"],
            registry=self.registry,
        )
        self.direct = deliveries.labels(path="direct")
        self.queued = deliveries.labels(path="queued")
        skipped = Counter(
            "imageshark_fanout_skipped",
            "Room broadcast packets not handed to a recipient: its socket was closed by then "
            "('closed'), or its send failed and the socket was closed ('failed').",
            ["reason"],
            registry=self.registry,
        )
        self.skipped_closed = skipped.labels(reason="closed")
        self.skipped_failed = skipped.labels(reason="failed")


logger = logging.getLogger(__name__)


class RegisteredWebSocket(engineio_asgi.WebSocket):  # type: ignore[misc]
    """python-engineio's ASGI WebSocket wrapper that records, on the Engine.IO socket it serves,
    the uvicorn protocol of its connection when that is ``websockets-sansio`` (else nothing),
    so that a broadcast can write to it.

    The wrapper is built as ``WebSocket(socket._websocket_handler, server)``; the handler's
    ``__self__`` is the socket. A WebSocket that opens a session is recorded at once; one that
    upgrades a long-polling session only when its client confirms the upgrade (the ``5``
    packet), because several may probe the same session and python-engineio's writer serves
    the one that confirms. The record is removed when the handler returns.
    """

    _socket: Any = None
    _protocol: WebSocketsSansIOProtocol | None = None

    async def __call__(self, environ: dict[str, Any]) -> str:
        """Run the Engine.IO WebSocket handler for the connection in ``environ``.

        :returns: the empty response body python-engineio expects.
        """
        socket = getattr(self.handler, "__self__", None)
        protocol = getattr(environ.get("asgi.send"), "__self__", None)
        if (
            socket is None
            or type(protocol) is not WebSocketsSansIOProtocol
            # A client may negotiate permessage-deflate: frames would differ per recipient.
            or protocol.config.ws_per_message_deflate
        ):
            return str(await super().__call__(environ))
        self._socket, self._protocol = socket, protocol
        if not socket.connected:  # a new WebSocket-only session: upgraded as the handler starts
            setattr(socket, _PROTOCOL_ATTRIBUTE, protocol)
        try:
            return str(await super().__call__(environ))
        finally:
            if getattr(socket, _PROTOCOL_ATTRIBUTE, None) is protocol:
                delattr(socket, _PROTOCOL_ATTRIBUTE)

    async def wait(self) -> Any:
        """The next message from the client (python-engineio's ``wait``), recording this
        connection on its socket when the message confirms an upgrade in progress.

        :raises OSError: the connection closed.
        """
        data = await super().wait()
        socket = self._socket
        if (
            self._protocol is not None
            and isinstance(data, str)
            and data[:1] == "5"  # python-engineio decodes any such text as UPGRADE
            and socket.upgrading
            and not socket.upgraded
        ):
            # The handler marks the socket upgraded and starts its writer for this connection
            # with no await in between, so no broadcast can see the record too early.
            setattr(socket, _PROTOCOL_ATTRIBUTE, self._protocol)
        return data


def internals_missing(server: socketio.AsyncServer) -> list[str]:
    """What of the library internals the direct path reads ``server`` lacks, each named as
    ``module.Class.attribute``; empty when all are there.

    Instance attributes are looked up on a throwaway Engine.IO socket of ``server`` (which is
    not registered anywhere) and on ``server``'s own objects; uvicorn's protocol and config,
    which need a connection to build, by the names their ``__init__`` assigns.
    """
    eio = server.eio
    missing = missing_attributes(eio, ("_async", "sockets", "ping_timeout"), "engineio.AsyncServer")
    if "websocket" not in getattr(eio, "_async", {}):
        missing.append("engineio.AsyncServer._async['websocket']")
    missing += missing_attributes(
        engineio_asgi.WebSocket, ("handler", "wait"), "engineio.async_drivers.asgi.WebSocket"
    )
    socket = AsyncSocket(eio, "fast-path-probe")
    missing += missing_attributes(
        socket,
        (
            "_websocket_handler",
            "queue",
            "sid",
            "connected",
            "upgraded",
            "upgrading",
            "closed",
            "closing",
            "last_ping",
            "send",
            "close",
        ),
        "engineio.AsyncSocket",
    )
    missing += missing_attributes(
        getattr(socket, "queue", None), ("_queue", "_getters"), "asyncio.Queue"
    )
    missing += missing_attributes(
        server.manager, ("rooms", "server", "get_participants"), "socketio.AsyncManager"
    )
    missing += missing_attributes(server, ("packet_class",), "socketio.AsyncServer")
    missing += missing_attributes(
        WebSocketsSansIOProtocol,
        ("config", "close_sent", "disconnected", "writable", "transport", "send"),
        "uvicorn.WebSocketsSansIOProtocol",
    )
    missing += missing_attributes(uvicorn.Config, ("ws_per_message_deflate",), "uvicorn.Config")
    missing += missing_parameters(Frame, "serialize", ("mask", "extensions"), "websockets.Frame")
    missing += missing_attributes(Opcode, ("TEXT",), "websockets.frames.Opcode")
    return missing


def register_websockets(server: socketio.AsyncServer) -> bool:
    """Turn the direct path on for ``server``: probe the internals it reads and, when all are
    there, make its Engine.IO server wrap WebSockets with :class:`RegisteredWebSocket` and its
    :class:`SequentialFanOutManager` write broadcasts directly. Otherwise log one warning naming
    what is missing and leave both stock: broadcasts go through python-socketio's own manager.

    :param server: an ``async_mode="asgi"`` Socket.IO server whose ``client_manager`` is a
        :class:`SequentialFanOutManager`, before it serves anyone.
    :returns: whether the direct path is on.
    :raises ValueError: for another async mode or another manager.
    """
    eio = server.eio
    if eio.async_mode != "asgi":
        raise ValueError(f"direct fan-out needs async_mode='asgi', not {eio.async_mode!r}")
    manager = server.manager
    if not isinstance(manager, SequentialFanOutManager):
        raise ValueError("direct fan-out needs a SequentialFanOutManager as client_manager")
    missing = internals_missing(server)
    if missing:
        report_fallback(
            "fanout", missing, "room broadcasts go through python-socketio's own manager"
        )
        return False
    # A copy: the driver's table is shared by every server in the process.
    eio._async = {**eio._async, "websocket": RegisteredWebSocket}
    manager.direct = True
    return True


def _direct_transport(socket: Any, stale_before: float) -> Any:
    """The asyncio transport to write a broadcast frame to for Engine.IO ``socket``, or None
    when the frame must go through the socket's queue (see the module docstring).

    It runs once per recipient of every broadcast, on objects that are rarely in the CPU
    caches by then, so it reads as few of them as the guarantees allow (each object is a cache
    miss; bench/README.md, "Fewer objects read per recipient"):

    - the writer is idle when the queue is empty and one getter waits on it. A getter that a
      ``wait_for`` timeout has just cancelled also counts as waiting: that writer is ending
      for lack of traffic, and a queued packet would be lost with it just the same;
    - the connection is open when uvicorn has sent no close frame (``close_sent``), has not
      lost it (``disconnected``) and its transport is not closing. uvicorn's protocol leaves
      the OPEN state only on a path that sets one of these: the app's or a keepalive close
      sets ``close_sent``; a peer's close frame, a parser error and a shutdown close the
      transport in the same callback. So the websockets state machine is not read;
    - no extension rewrites frames: :class:`RegisteredWebSocket` registers no connection of a
      server that offers permessage-deflate.

    :param stale_before: a ``time.time()`` before which a socket's last ping means a timed-out
        client (the queued path closes it).
    """
    protocol = getattr(socket, _PROTOCOL_ATTRIBUTE, None)
    if protocol is None or not socket.upgraded or socket.upgrading or socket.closed:
        return None
    last_ping = socket.last_ping
    if last_ping and last_ping < stale_before:
        return None
    queue = socket.queue
    # The writer waits in queue.get() exactly when the queue is empty and its getter is in the
    # queue's list; it is then not in the middle of sending anything (a getter woken by a put
    # leaves the list as it is woken).
    if queue._queue or len(queue._getters) != 1:
        return None
    # uvicorn sends only whole messages, so no fragmented message can be in progress.
    if protocol.close_sent or protocol.disconnected or not protocol.writable.is_set():
        return None
    transport = protocol.transport
    return None if transport.is_closing() else transport


class SequentialFanOutManager(socketio.AsyncManager):  # type: ignore[misc]
    """``socketio.AsyncManager`` whose broadcasts without acknowledgement callbacks write one
    ready-made WebSocket frame to each eligible recipient and queue the packet for the others
    (same packets, same order per socket, no task per recipient). Emits with a callback keep
    the library's behaviour.

    Pass an instance as ``client_manager`` to ``socketio.AsyncServer`` and call
    :func:`register_websockets` on that server: until it finds every internal it needs
    (``direct`` stays False), every emit is python-socketio's own.

    :param counters: where deliveries and skips are counted; None: counters of its own.
    """

    #: Whether broadcasts take this class's path; set by :func:`register_websockets`.
    direct = False

    def __init__(self, counters: FanOutCounters | None = None) -> None:
        super().__init__()
        self.counters = counters if counters is not None else FanOutCounters()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Send ``event`` with ``data`` to ``room`` (or ``to``) in ``namespace``, except the
        clients in ``skip_sid`` (one sid, a list, or None)."""
        if callback is not None or not self.direct:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        target = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            arguments = list(data)
        elif data is not None:
            arguments = [data]
        else:
            arguments = []
        skipped = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *arguments]
        ).encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        packets = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in parts]
        # One text frame for every WebSocket recipient; binary attachments are always queued.
        frame = (
            Frame(Opcode.TEXT, packets[0].encode().encode()).serialize(mask=False, extensions=[])
            if len(packets) == 1 and isinstance(parts[0], str)
            else None
        )
        # Take the recipients first: a send may close a timed-out socket, changing the room.
        recipients = [
            eio_sid
            for sid, eio_sid in self.get_participants(namespace, target)
            if sid not in skipped
        ]
        eio = self.server.eio
        sockets = eio.sockets
        stale_before = time.time() - eio.ping_timeout
        # First decide, then write: the checks read a dozen small objects per socket, which
        # stay in the CPU caches when no send system call (and its TCP work) runs in between.
        # Nothing is awaited until every direct write is done, so no socket's state can change
        # between its check and its write.
        transports = []
        queued_sockets = []
        for eio_sid in recipients:
            socket = sockets.get(eio_sid)
            if socket is None:
                continue
            transport = _direct_transport(socket, stale_before) if frame is not None else None
            if transport is None:
                queued_sockets.append(socket)
            else:
                transports.append(transport)
        for transport in transports:
            transport.write(frame)
        self.counters.direct.inc(len(transports))
        for socket in queued_sockets:
            if await _send_queued(socket, packets, self.counters):
                self.counters.queued.inc()


async def _send_queued(
    socket: Any, packets: list[eio_packet.Packet], counters: FanOutCounters
) -> bool:
    """Put ``packets`` on Engine.IO ``socket``'s queue, unless it is closed or closing.

    A send closes a timed-out socket, and its disconnect handler broadcasts (``presence``) to
    the same room, which may close further recipients of the broadcast in progress before their
    turn; so each send is checked and isolated. A send that fails otherwise closes its socket,
    so that its client reconnects and catches up with its ``last_seq``.

    :returns: True when every packet was queued. Never raises (but for cancellation).
    """
    for eio_pkt in packets:
        if socket.closed or socket.closing:
            counters.skipped_closed.inc()
            logger.debug("broadcast skips %s: its socket is closed", socket.sid)
            return False
        try:
            await socket.send(eio_pkt)
        except SocketIsClosedError:
            counters.skipped_closed.inc()
            logger.debug("broadcast skips %s: its socket closed meanwhile", socket.sid)
            return False
        except Exception:
            counters.skipped_failed.inc()
            logger.warning("broadcast to %s failed; closing it", socket.sid, exc_info=True)
            try:
                await socket.close(wait=False, abort=False)
            except Exception:
                logger.warning(
                    "closing %s after a failed broadcast failed", socket.sid, exc_info=True
                )
            return False
        if socket.closed or socket.closing:  # the send found it timed out and closed it
            counters.skipped_closed.inc()
            return False
    return True
