"""The live side under hostile clients: every Engine.IO session is held to a few limits.

- **Inbound packets are bounded** per session by a token bucket (:attr:`ConnectionLimits.burst`
  packets at once, :attr:`ConnectionLimits.packets_per_second` sustained; a well-behaved
  client sends a CONNECT and a pong per heartbeat). A session over the bound is closed and its
  connection aborted, and what it had sent is dropped unread.
- **A malformed Socket.IO packet** (undecodable, or a type a client may not send) is logged once
  and closes its session, as the reference Node.js server does; python-socketio would log a
  traceback for each one and keep going.
- **A session that never connects a namespace** within :attr:`ConnectionLimits.connect_timeout`
  seconds of its Engine.IO handshake is closed.
- **A long-polling client's goodbye is answered at once**: python-engineio closes the session
  on the client's CLOSE packet but leaves the client's held GET poll waiting until the ping
  interval and timeout run out (25 + 20 s by default), so a client waiting for that poll to end
  (python-socketio's does) hangs that long. The guard ends the held poll with python-engineio's
  own end-of-queue marker, as the reference Node.js server answers it.
- **A closed session's connection is torn down**: python-engineio's WebSocket writer waits on a
  paused transport for ever when the peer stops reading, so the TCP connection, with its
  buffers, outlived the session. When a session ends, its transport is aborted (with a reset,
  dropping unsent bytes) at once if it holds unsent bytes, else after
  :attr:`ConnectionLimits.close_grace` seconds if the peer has not closed it by then.

This reads python-socketio's and python-engineio's internals (the ``_handle_eio_*`` handlers,
the Engine.IO socket's ``receive``, ``poll`` and ``queue``, and its WebSocket wrapper) and
uvicorn's (the protocol of a connection, behind ``asgi.send``). :class:`GuardedServer` checks
them when it is built (realtime/internals.py); if they are not as expected it logs one warning
and serves as a plain ``socketio.AsyncServer``. The versions are bounded in pyproject.toml;
tests/realtime/test_hostile_clients.py covers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket as socket_module
import struct
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from socketio import packet

from realtime.internals import missing_parameters, report_fallback

logger = logging.getLogger(__name__)

# The attribute of an Engine.IO socket that holds the asyncio transport of its WebSocket.
_TRANSPORT_ATTRIBUTE = "_imageshark_transport"

# Socket.IO packet types a client may send while no binary attachment is expected.
_CLIENT_PACKETS = frozenset(
    {
        packet.CONNECT,
        packet.DISCONNECT,
        packet.EVENT,
        packet.ACK,
        packet.BINARY_EVENT,
        packet.BINARY_ACK,
    }
)


@dataclass(frozen=True)
class ConnectionLimits:
    """Limits on each Engine.IO session.

    :param connect_timeout: seconds a session may stay without a namespace connection.
    :param packets_per_second: inbound Engine.IO packets a session may send, sustained.
    :param burst: inbound packets a session may send at once (the bucket's size).
    :param close_grace: seconds a closed session's connection may stay open for the peer to
        close it cleanly before it is aborted.
    """

    connect_timeout: float = 10.0
    packets_per_second: float = 20.0
    burst: int = 100
    close_grace: float = 5.0


class _Session:
    """The guard's state of one Engine.IO session."""

    __slots__ = ("abusive", "closing", "deadline", "refilled", "tokens")

    def __init__(self, tokens: float, now: float, deadline: asyncio.TimerHandle) -> None:
        self.tokens = tokens
        self.refilled = now
        self.closing = False
        self.abusive = False
        self.deadline = deadline


def _internals_missing(server: socketio.AsyncServer) -> list[str]:
    """What of the library internals this module uses is not as expected (empty: nothing)."""
    missing: list[str] = []
    for name, parameters in (
        ("_handle_eio_connect", ("eio_sid", "environ")),
        ("_handle_eio_message", ("eio_sid", "data")),
        ("_handle_eio_disconnect", ("eio_sid", "reason")),
    ):
        missing += missing_parameters(
            socketio.AsyncServer, name, parameters, "socketio.AsyncServer"
        )
    missing += missing_parameters(AsyncSocket, "receive", ("pkt",), "engineio.AsyncSocket")
    missing += missing_parameters(AsyncSocket, "poll", (), "engineio.AsyncSocket")
    if not isinstance(getattr(server, "_binary_packet", None), dict):
        missing.append("socketio.AsyncServer._binary_packet")
    eio = server.eio
    if not isinstance(getattr(eio, "sockets", None), dict) or "websocket" not in getattr(
        eio, "_async", {}
    ):
        missing.append("engineio.AsyncServer.sockets / _async['websocket']")
    return missing


def _end_held_poll(socket: AsyncSocket) -> None:
    """Answer a closed long-polling session's held GET now: ``None`` in its queue is
    python-engineio's end-of-queue marker (``AsyncSocket.poll`` returns no packets for it)."""
    queue = getattr(socket, "queue", None)
    if isinstance(queue, asyncio.Queue):
        queue.put_nowait(None)


def _transport_of(environ: dict[str, Any]) -> asyncio.Transport | None:
    """The asyncio transport of the connection an ASGI ``environ`` came in on, when the server
    exposes it (uvicorn: ``asgi.send`` is a method of the connection's protocol)."""
    protocol = getattr(environ.get("asgi.send"), "__self__", None)
    transport = getattr(protocol, "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None


def _abort(transport: asyncio.Transport) -> None:
    """Close ``transport`` now, with a TCP reset: the kernel drops its unsent bytes too
    (a plain close would keep retrying them to a peer that does not read)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.setsockopt(
                socket_module.SOL_SOCKET, socket_module.SO_LINGER, struct.pack("ii", 1, 0)
            )
    transport.abort()


class _GuardedWebSocket:
    """Mixed into the Engine.IO server's WebSocket wrapper class: records the connection's
    transport on the Engine.IO socket it serves, and stops reading once that socket closes."""

    handler: Any

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)
        transport = _transport_of(environ)
        if socket is not None and transport is not None:
            setattr(socket, _TRANSPORT_ATTRIBUTE, transport)
        return await super().__call__(environ)  # type: ignore[misc]

    async def wait(self) -> Any:
        socket = getattr(self.handler, "__self__", None)
        if socket is not None and (socket.closing or socket.closed):
            # What a closed session's peer sends next is dropped: the reader loop ends here.
            raise OSError("the session is closed")
        return await super().wait()  # type: ignore[misc]


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """``socketio.AsyncServer`` that holds every Engine.IO session to ``limits`` (see the module
    docstring). Takes the same arguments, plus:

    :param limits: the limits; call :meth:`guard_websockets` once the WebSocket wrapper class is
        final (after ``register_websockets``).
    """

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._sessions: dict[str, _Session] = {}
        self._closing_tasks: set[asyncio.Task[None]] = set()
        missing = _internals_missing(self)
        self.guarded = not missing
        if missing:
            report_fallback(
                "guard", missing, "the live side runs without its per-connection limits"
            )

    def guard_websockets(self) -> None:
        """Wrap the Engine.IO server's WebSocket class (whatever is registered) with the
        guard's: call once, after any other change to that class."""
        if not self.guarded:
            return
        eio = self.eio
        registered = eio._async["websocket"]
        guarded = type("GuardedWebSocket", (_GuardedWebSocket, registered), {})
        # A copy: the driver's table is shared by every server in the process.
        eio._async = {**eio._async, "websocket": guarded}

    # ---- sessions ------------------------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        result = await super()._handle_eio_connect(eio_sid, environ)
        socket = self.eio.sockets.get(eio_sid) if self.guarded else None
        if socket is None:
            return result
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self.limits.connect_timeout, self._connect_deadline, eio_sid)
        session = _Session(float(self.limits.burst), loop.time(), deadline)
        self._sessions[eio_sid] = session
        receive = socket.receive

        async def guarded_receive(pkt: Any) -> None:
            if self._admit(eio_sid, session):
                await receive(pkt)
                if pkt.packet_type == eio_packet.CLOSE and not getattr(socket, "upgraded", True):
                    _end_held_poll(socket)

        socket.receive = guarded_receive
        return result

    def _admit(self, eio_sid: str, session: _Session) -> bool:
        """Take a token for one inbound packet; False (and the session closes) when none is
        left, or the session is already closing."""
        if session.closing:
            return False
        now = asyncio.get_running_loop().time()
        session.tokens = min(
            float(self.limits.burst),
            session.tokens + (now - session.refilled) * self.limits.packets_per_second,
        )
        session.refilled = now
        if session.tokens >= 1:
            session.tokens -= 1
            return True
        logger.warning(
            "closing live connection %s: more than %d packets at once or %g per second",
            eio_sid,
            self.limits.burst,
            self.limits.packets_per_second,
        )
        session.abusive = True
        self._close(eio_sid, session)
        return False

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> Any:
        session = self._sessions.get(eio_sid)
        if session is None:
            return await super()._handle_eio_message(eio_sid, data)
        if session.closing:
            return None
        if eio_sid not in self._binary_packet:
            problem = self._malformed(eio_sid, data)
            if problem is not None:
                logger.warning(
                    "closing live connection %s: malformed Socket.IO packet (%s): %.60r",
                    eio_sid,
                    problem,
                    data,
                )
                self._close(eio_sid, session)
                return None
        return await super()._handle_eio_message(eio_sid, data)

    def _malformed(self, eio_sid: str, data: Any) -> str | None:
        """Why ``data`` is not a packet a client may send now, or None if it is one."""
        if not isinstance(data, str):
            return "binary data where no attachment is expected"
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception as exc:  # whatever the decoder raises: the packet is not decodable
            return f"{type(exc).__name__}: {exc}"
        if pkt.packet_type not in _CLIENT_PACKETS:
            return f"packet type {pkt.packet_type!r}"
        if pkt.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK) and (
            self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/") is None
        ):
            return "binary packet outside a namespace"
        return None

    def _connect_deadline(self, eio_sid: str) -> None:
        session = self._sessions.get(eio_sid)
        if session is None or session.closing:
            return
        for namespace in list(self.manager.get_namespaces()):
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is None:
                continue
            if not self.manager.is_connected(sid, namespace):
                # Its connect handler is still running (a slow database): look again later.
                session.deadline = asyncio.get_running_loop().call_later(
                    self.limits.connect_timeout, self._connect_deadline, eio_sid
                )
            return
        logger.info(
            "closing live connection %s: no namespace connected within %g s",
            eio_sid,
            self.limits.connect_timeout,
        )
        self._close(eio_sid, session)

    def _close(self, eio_sid: str, session: _Session) -> None:
        """Close the session in a task (never inline: closing waits for its writer)."""
        session.closing = True
        task = self.start_background_task(self._disconnect, eio_sid)
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    async def _disconnect(self, eio_sid: str) -> None:
        # The disconnect waits until the writer has taken every queued packet; a writer stuck
        # on a peer that does not read never does, and the transport is aborted meanwhile.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.close_grace):
                await self.eio.disconnect(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        try:
            return await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            session = self._sessions.pop(eio_sid, None)
            if session is not None:
                session.closing = True
                session.deadline.cancel()
            transport = getattr(socket, _TRANSPORT_ATTRIBUTE, None)
            if transport is not None:
                if (session is not None and session.abusive) or transport.get_write_buffer_size():
                    # A flooding peer, or one that stopped reading: nothing is worth waiting for.
                    _abort(transport)
                else:
                    asyncio.get_running_loop().call_later(
                        self.limits.close_grace, _abort, transport
                    )
