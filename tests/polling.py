"""Waiting on state that announces no event: a server's files, a socket another library owns,
a port that is not listening yet. Everything else waits on events (conditions, futures, expect).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll_until(
    probe: Callable[[], T | Awaitable[T]],
    *,
    deadline: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``probe`` every ``interval`` seconds until it returns a truthy value; return it.

    :param probe: a function (plain or async) whose truthy result ends the wait.
    :param deadline: seconds to keep trying.
    :param interval: seconds between tries.
    :param what: what is awaited, for the failure message.
    :raises AssertionError: when ``deadline`` passes with every result falsy.
    """
    started = time.monotonic()
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]  # awaited above when awaitable
        assert time.monotonic() - started < deadline, f"{what}: not reached in {deadline} s"
        await asyncio.sleep(interval)
