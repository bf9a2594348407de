"""``python -m tests.production.held_worker worker ...``: ``imageshark worker`` whose renders
wait, before they start, until the process gets SIGUSR1 (all of them, from then on, go on).

Each held render prints ``WORKER_HOLD_POINT``, so that a test can SIGTERM the worker while a
job is mid-render (its upload fetched, a staging folder made, nothing rendered or stored),
then let it go on, or never, and see what the drain does.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from web import cli
from web.pipeline.pool import RenditionPool

HOLD_POINT = "WORKER_HOLD_POINT"

_render = RenditionPool.stage_and_render
_released: asyncio.Event | None = None


async def _held_render(self: RenditionPool, upload: Path | bytes, *args: Any, **kwargs: Any) -> Any:
    global _released
    if _released is None:
        _released = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _released.set)
    print(HOLD_POINT, flush=True)
    await _released.wait()
    return await _render(self, upload, *args, **kwargs)


if __name__ == "__main__":
    RenditionPool.stage_and_render = _held_render  # type: ignore[method-assign]
    cli.main()
