"""Room broadcasts without a task per recipient.

python-socketio's ``AsyncManager.emit`` encodes a broadcast once, then starts one asyncio task
per recipient to hand the packet to its Engine.IO socket, and waits for them all. Handing a
packet over only appends it to the socket's unbounded outgoing queue (its writer task does the
I/O), so those tasks do no waiting of their own: creating, scheduling and collecting them was
the largest share of the server's CPU per delivery in ``bench/live.py`` (see bench/README.md).
:class:`SequentialFanOutManager` hands the same encoded packet to each socket in turn instead.
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet


class SequentialFanOutManager(socketio.AsyncManager):  # type: ignore[misc]
    """``socketio.AsyncManager`` whose broadcasts without acknowledgement callbacks enqueue the
    encoded packet on each recipient's socket in turn (same packets, same order per socket, no
    task per recipient). Emits with a callback keep the library's behaviour.

    Pass an instance as ``client_manager`` to ``socketio.AsyncServer``.
    """

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
        if callback is not None:
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
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        # Take the recipients first: a send may close a timed-out socket, changing the room.
        recipients = [
            eio_sid
            for sid, eio_sid in self.get_participants(namespace, target)
            if sid not in skipped
        ]
        for eio_sid in recipients:
            for frame in frames:
                await self.server._send_eio_packet(eio_sid, frame)
