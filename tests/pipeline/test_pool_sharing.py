"""The pool shared between rooms, and its time limit: FIFOs make "a worker runs this job" an
observable event (see tests/pipeline/test_pool.py), so no step waits on a sleep."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.pipeline.test_pool import PHOTO, SPEC, feed, fifo, out_dir, wait_for_reader
from web.pipeline import PipelineBusy, RenditionPool
from web.pipeline.formats import ImageTooCostly


async def test_a_rooms_burst_is_refused_for_that_room_only_and_others_go_first(
    tmp_path: Path,
) -> None:
    pool = RenditionPool(workers=1, queue_limit=4, room_queue_limit=1)
    await pool.start()
    try:
        a1, a2, b1 = fifo(tmp_path, "a1"), fifo(tmp_path, "a2"), fifo(tmp_path, "b1")
        first = asyncio.create_task(pool.render(a1, out_dir(tmp_path, "a1o"), SPEC, room="A"))
        writer = await wait_for_reader(a1)  # room A holds the only worker
        # Tasks take their first step in the order they were created: A2, A3, then B1.
        second = asyncio.create_task(pool.render(a2, out_dir(tmp_path, "a2o"), SPEC, room="A"))
        third = asyncio.create_task(
            pool.render(tmp_path / "a3", out_dir(tmp_path, "a3o"), SPEC, room="A")
        )
        other = asyncio.create_task(pool.render(b1, out_dir(tmp_path, "b1o"), SPEC, room="B"))
        with pytest.raises(PipelineBusy):  # A's share is full: 1 running + 1 waiting
            await third
        assert pool.pending == 3  # B got in
        with writer:
            await asyncio.to_thread(writer.write, PHOTO)
        # B queued after A's second job, but it runs first: it has no job running.
        await feed(b1, PHOTO)
        assert (await other).display_width == 500
        assert not second.done()
        await feed(a2, PHOTO)
        assert (await first).display_width == (await second).display_width == 500
    finally:
        await pool.close()


async def test_a_job_over_the_time_limit_is_stopped_not_retried(tmp_path: Path) -> None:
    pool = RenditionPool(workers=1, queue_limit=1, timeout_seconds=3)
    await pool.start()
    try:
        never_fed = fifo(tmp_path, "stuck")  # the worker blocks reading it until killed
        with pytest.raises(ImageTooCostly) as caught:
            await pool.render(never_fed, out_dir(tmp_path, "stuck_out"), SPEC)
        assert (caught.value.status, caught.value.code) == (422, "image_too_costly")
        assert pool.pending == 0
        source = tmp_path / "photo.jpg"
        source.write_bytes(PHOTO)  # a replacement worker takes the next job
        assert (await pool.render(source, out_dir(tmp_path, "ok"), SPEC)).display_width == 500
    finally:
        await pool.close()
