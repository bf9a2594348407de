"""Rate limits on uploads and join attempts, counted by the ``limits`` library.

With ``REDIS_URL`` the counters live in Redis, so every replica enforces one shared limit;
otherwise in this process's memory. Counting uses the moving-window strategy (``limits``
docs, "Rate limiting strategies"): no burst at window edges as with fixed windows.

A rate limit protects the service; it must not take it down: while Redis is unreachable the
limiter lets requests through (and logs it) rather than refusing every upload.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool, ConnectionPool

from web.errors import ApiError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5
"""Longest wait to connect to Redis or for its answer before the request goes unchecked."""
REDIS_CONNECTIONS = 16
"""Most Redis connections the limiter opens; requests beyond wait for a free one."""
REDIS_POOL_WAIT_SECONDS = 5.0
"""Longest wait for a free connection before the request goes unchecked."""


class RateLimiter:
    """Named limits over one counter store.

    :param limits: ``{name: "N/period"}``, e.g. ``{"upload": "30/minute"}`` (``limits`` notation).
    :param redis_url: Redis URL (``redis://...``) to share counters between replicas, or None.
    :param key_prefix: prefix of the Redis keys (the deployment's Redis prefix).
    """

    def __init__(self, limits: dict[str, str], redis_url: str | None, key_prefix: str) -> None:
        self.items: dict[str, RateLimitItem] = {name: parse(text) for name, text in limits.items()}
        self._pool: ConnectionPool | None = None
        storage: Storage
        if redis_url is not None:
            # Bounded: a flood of 200 concurrent requests opened 200 connections at once, and
            # those the loaded event loop did not finish within the connect timeout let their
            # requests through unchecked, so the flood itself defeated the limit.
            self._pool = BlockingConnectionPool.from_url(
                redis_url,
                max_connections=REDIS_CONNECTIONS,
                timeout=REDIS_POOL_WAIT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{key_prefix}:limits",
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)

    async def hit(self, name: str, key: str) -> None:
        """Count one request of kind ``name`` by ``key`` (a participant or client address).

        :raises ApiError: 429 ``rate_limited`` with ``Retry-After`` (whole seconds until the
            window admits one more) when over the limit.
        """
        item = self.items[name]
        try:
            allowed = await self.limiter.hit(item, name, key)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(item, name, key)
        except Exception as exc:  # Redis down: let the request through
            logger.warning("rate limit not checked (%s): %s", name, exc)
            return
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests; please wait {wait} seconds and try again.",
            {"Retry-After": str(wait)},
        )

    async def close(self) -> None:
        """Close the Redis connections, if any."""
        if self._pool is not None:
            await self._pool.disconnect()
