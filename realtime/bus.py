"""Fan-out of room events to every replica: in-process, or through Redis pub/sub.

The shape follows encode/broadcaster: a small backend interface and one listener task per
replica. A publisher hands an event to :meth:`RoomEventBus.publish` after the database commit;
every replica's listener hands it to the ``deliver`` callback given to :meth:`start`, which
emits it to that replica's local Socket.IO clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from web.event_log import RoomEvent

logger = logging.getLogger(__name__)


Deliver = Callable[[RoomEvent], Awaitable[None]]
OnResync = Callable[[], Awaitable[None]]
HostRevoked = Callable[[int, int], Awaitable[None]]
"""Called on every replica with ``(room_id, account_id)`` when that account stops being one
of the room's hosts (``RoomNamespace.host_revoked``)."""


async def ignore_revocations(room_id: int, account_id: int) -> None:
    """A :data:`HostRevoked` for a bus started without a live side: nothing to demote."""


def redis_client(url: str) -> redis.Redis:
    """A Redis client for the bus and presence of one replica (they share its connection
    pool): connect timeout 2 s, command timeout 5 s, connection health checked every 10 s.
    The caller closes it (``aclose``) after closing both.

    :param url: Redis URL (``redis://host:port/db``).
    """
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
    )


class RoomEventBus(Protocol):
    """What the rest of the service needs from a bus."""

    @property
    def backend(self) -> str | None:
        """The outside service carrying events between replicas, by the name readiness
        reports it under (``"redis"``), or None when events never leave the process."""

    @property
    def may_lose_events(self) -> bool:
        """Whether a published event can fail to reach a replica with nothing after it to
        reveal the gap, so replicas must catch up from the log now and again."""

    async def ping(self) -> None:
        """Raise (the backend's error) if :attr:`backend` does not answer; a no-op without
        one."""

    async def start(
        self, deliver: Deliver, on_resync: OnResync, revoked: HostRevoked = ignore_revocations
    ) -> None:
        """Begin delivering events to ``deliver``; ``on_resync`` is awaited whenever events may
        have been missed (the subscription was re-established); ``revoked`` receives every
        replica's :meth:`revoke_host`."""

    async def publish(self, event: RoomEvent) -> bool:
        """Send ``event`` to every replica; False if it could not be sent now (it is in the
        database log, so replicas catch up on resync)."""

    async def revoke_host(self, room_id: int, account_id: int) -> bool:
        """Tell every replica, this one first, that ``account_id`` is no longer a host of
        ``room_id`` (a control message, not a room event: it is not logged and no client but
        that account's sockets hears of it). False if other replicas could not be told now."""

    async def close(self) -> None:
        """Stop delivering (and listening); a client given to the bus stays open."""


async def listen_forever(
    client: redis.Redis,
    channel: str,
    subscribed: Callable[[], Awaitable[None]],
    received: Callable[[bytes], Awaitable[None]],
    *,
    lost: Callable[[], None],
) -> None:
    """Subscribe ``client`` to ``channel`` and hand each message's data to ``received``, until
    cancelled; ``subscribed`` is awaited after every (re)subscription, ``lost`` called when the
    connection fails. Reconnects with exponential backoff from 0.1 s, capped at 5 s.
    """
    backoff = 0.1
    while True:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            backoff = 0.1
            await subscribed()
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    await received(message["data"])
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            lost()
            logger.warning(
                "redis subscription to %s lost (%s); retrying in %.1fs", channel, exc, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


async def deliver_locally(deliver: Deliver, event: RoomEvent) -> None:
    """Await ``deliver(event)``, logging instead of raising if it fails: the event is committed
    and in the log, so the change's own answer (an upload's 201) and its fan-out to other
    replicas must not depend on this replica's clients taking it."""
    try:
        await deliver(event)
    except Exception:
        logger.exception(
            "delivering room %s event %s to local clients failed", event.room_id, event.seq
        )


async def revoke_locally(revoked: HostRevoked, room_id: int, account_id: int) -> None:
    """Await ``revoked(room_id, account_id)``, logging instead of raising if it fails: the
    removal is committed, and its HTTP answer must not depend on this replica's sockets."""
    try:
        await revoked(room_id, account_id)
    except Exception:
        logger.exception(
            "revoking account %s's host sockets in room %s failed", account_id, room_id
        )


class LocalBus:
    """The embedded default: one process, events delivered directly."""

    backend: str | None = None
    may_lose_events = False

    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._revoked: HostRevoked = ignore_revocations

    async def ping(self) -> None:
        """Nothing to reach: the bus is this process."""

    async def start(
        self, deliver: Deliver, on_resync: OnResync, revoked: HostRevoked = ignore_revocations
    ) -> None:
        self._deliver = deliver
        self._revoked = revoked

    async def publish(self, event: RoomEvent) -> bool:
        if self._deliver is not None:
            await deliver_locally(self._deliver, event)
        return True

    async def revoke_host(self, room_id: int, account_id: int) -> bool:
        await revoke_locally(self._revoked, room_id, account_id)
        return True

    async def close(self) -> None:
        self._deliver = None
        self._revoked = ignore_revocations


class RedisBus:
    """Redis pub/sub on one channel, ``<prefix>:room-events``, shared by all replicas, and
    ``<prefix>:host-revocations`` for :meth:`revoke_host` (``{"room_id", "account_id"}``).

    Redis pub/sub delivers at most once and drops what is published while a subscriber is
    disconnected; the listener therefore reconnects with capped exponential backoff and calls
    ``on_resync`` after every (re)subscription so the caller can catch up from the event log.

    :param client: the replica's Redis client (:func:`redis_client`; shared with presence,
        closed by the caller after :meth:`close`).
    :param prefix: key and channel prefix (one per deployment, or per test).
    """

    backend = "redis"
    may_lose_events = True

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.channel = f"{prefix}:room-events"
        self.revocations_channel = f"{prefix}:host-revocations"
        self.client = client
        self._task: asyncio.Task[None] | None = None
        self._revocations_task: asyncio.Task[None] | None = None
        self._deliver: Deliver | None = None
        self._revoked: HostRevoked = ignore_revocations
        self.subscribed = asyncio.Event()
        self.revocations_subscribed = asyncio.Event()

    async def start(
        self, deliver: Deliver, on_resync: OnResync, revoked: HostRevoked = ignore_revocations
    ) -> None:
        self._deliver = deliver
        self._revoked = revoked
        self._task = asyncio.create_task(self._listen(deliver, on_resync), name="redis-bus")
        self._revocations_task = asyncio.create_task(
            self._listen_revocations(revoked), name="redis-bus-revocations"
        )

    async def revoke_host(self, room_id: int, account_id: int) -> bool:
        # This replica's sockets first, as with publish; the copy that comes back through the
        # subscription finds them gone.
        await revoke_locally(self._revoked, room_id, account_id)
        message = json.dumps({"room_id": room_id, "account_id": account_id})
        try:
            await self.client.publish(self.revocations_channel, message)
        except (RedisError, OSError) as exc:
            logger.warning("redis publish of a host revocation failed: %s", exc)
            return False
        return True

    async def _listen_revocations(self, revoked: HostRevoked) -> None:
        async def subscribed() -> None:
            self.revocations_subscribed.set()

        async def received(data: bytes) -> None:
            try:
                message = json.loads(data)
                room_id, account_id = int(message["room_id"]), int(message["account_id"])
            except (ValueError, KeyError, TypeError):
                logger.error("dropping malformed host revocation %r", data[:200])
                return
            await revoke_locally(revoked, room_id, account_id)

        await listen_forever(
            self.client,
            self.revocations_channel,
            subscribed,
            received,
            lost=self.revocations_subscribed.clear,
        )

    async def publish(self, event: RoomEvent) -> bool:
        # This replica's clients first, straight away: they need not wait for the round trip,
        # nor for Redis to be up. The copy that comes back through the subscription is then a
        # duplicate by seq, which delivery drops.
        if self._deliver is not None:
            await deliver_locally(self._deliver, event)
        if not self.subscribed.is_set():
            # Redis is known to be down: don't make the upload wait for a connect timeout.
            # Other replicas will read the event from the log when they catch up.
            return False
        try:
            await self.client.publish(self.channel, event.to_json())
        except (RedisError, OSError) as exc:
            logger.warning("redis publish failed, replicas will catch up from the log: %s", exc)
            return False
        return True

    async def ping(self) -> None:
        """Raise if Redis does not answer."""
        await self.client.ping()

    async def _listen(self, deliver: Deliver, on_resync: OnResync) -> None:
        async def subscribed() -> None:
            self.subscribed.set()
            try:
                await on_resync()
            except Exception:  # the database may be down too; the periodic catch-up retries
                logger.exception("catch-up after (re)subscribing failed")

        async def received(data: bytes) -> None:
            try:
                event = RoomEvent.from_json(data)
            except (ValueError, KeyError, TypeError):
                logger.error("dropping malformed bus message %r", data[:200])
                return
            await deliver_locally(deliver, event)  # a failure must not end the listener

        await listen_forever(
            self.client, self.channel, subscribed, received, lost=self.subscribed.clear
        )

    async def close(self) -> None:
        for task in (self._task, self._revocations_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
