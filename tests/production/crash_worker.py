"""``python -m tests.production.crash_worker worker ...``: ``imageshark worker`` whose jobs stop
for good once the image and its ``image_added`` are committed and published, before the
upload's row is marked ``done``.

Each stopped job prints ``WORKER_CRASH_POINT <upload id>``, so that a test can SIGKILL the
worker exactly there and see another worker finish the job (no second image, no second event).
"""

from __future__ import annotations

import asyncio

from web import cli
from web.images.upload_repository import UploadRepository

CRASH_POINT = "WORKER_CRASH_POINT"


async def _stop_before_done(self: UploadRepository, upload_id: str, image_id: int) -> None:
    print(f"{CRASH_POINT} {upload_id}", flush=True)
    await asyncio.Event().wait()  # until the process is killed


if __name__ == "__main__":
    UploadRepository.finish = _stop_before_done  # type: ignore[method-assign]
    cli.main()
