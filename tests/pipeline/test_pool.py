"""The process pool: renders in workers, bounds its queue, survives worker crashes.

Synchronisation uses named pipes, not sleeps: a worker rendering a FIFO blocks in ``read`` until
the test writes the photo, and the test's ``open(fifo, "wb")`` returns exactly when a worker has
opened it for reading. So "a worker is busy with this job" is an observable event.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import select
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest
from PIL import Image

from tests.photos import assert_upright, hostile_corpus, make_image_bytes, reference_photo
from web.pipeline import (
    CorruptImage,
    ImageTooLarge,
    PipelineBusy,
    RenditionPool,
    RenditionSpec,
    UnsupportedImageType,
)

SPEC = RenditionSpec(display_max_px=500, thumb_max_px=120)
PHOTO = make_image_bytes("jpeg", size=(800, 600), orientation=6)


@pytest.fixture
async def pool() -> AsyncIterator[RenditionPool]:
    pool = RenditionPool(workers=1, queue_limit=1)
    await pool.start()
    yield pool
    await pool.close()


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


async def wait_for_reader(path: Path) -> BinaryIO:
    """Open ``path`` for writing; returns once a worker has opened it for reading."""
    return await asyncio.wait_for(asyncio.to_thread(open, path, "wb"), timeout=60)


async def feed(path: Path, data: bytes) -> None:
    """Wait for a worker to read ``path``, then give it ``data`` and end of file."""
    writer = await wait_for_reader(path)
    with writer:
        await asyncio.to_thread(writer.write, data)


def out_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _kill_and_wait(pid: int) -> None:
    # A pidfd becomes readable once the process has exited, i.e. after the kernel closed its
    # files; only then is a FIFO's next writer sure to meet the retry, not the dead reader.
    pidfd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        ready, _, _ = select.select([pidfd], [], [], 60)
        assert ready, f"worker {pid} did not die"
    finally:
        os.close(pidfd)


async def kill_workers() -> None:
    """SIGKILL every worker process of this test process (what a decoder segfault looks like)."""
    pids = [child.pid for child in multiprocessing.active_children() if child.pid is not None]
    assert pids, "no worker processes to kill"
    for pid in pids:
        await asyncio.to_thread(_kill_and_wait, pid)


async def test_renders_in_a_worker_and_writes_both_files(
    pool: RenditionPool, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    source.write_bytes(PHOTO)
    result = await pool.render(source, out_dir(tmp_path, "out"), SPEC)
    assert (result.format, result.mime_type) == ("jpeg", "image/jpeg")
    assert (result.original_width, result.original_height) == (800, 600)
    with Image.open(tmp_path / "out" / "display.jpg") as display:
        assert display.size == (result.display_width, result.display_height) == (500, 375)
        assert_upright(display, reference_photo("coffee", (800, 600)))
    with Image.open(tmp_path / "out" / "thumb.jpg") as thumb:
        assert thumb.size == (result.thumb_width, result.thumb_height) == (120, 90)
    assert result.render_seconds > 0
    assert pool.pending == 0


async def test_an_on_demand_pool_starts_its_workers_at_the_first_render(
    tmp_path: Path,
) -> None:
    before = {child.pid for child in multiprocessing.active_children()}
    pool = RenditionPool(workers=2, queue_limit=2, on_demand=True)
    await pool.start()
    try:
        assert {child.pid for child in multiprocessing.active_children()} == before
        sources = [tmp_path / "first", tmp_path / "second"]
        for source in sources:
            source.write_bytes(PHOTO)
        results = await asyncio.gather(
            *(pool.render(s, out_dir(tmp_path, f"out-{s.name}"), SPEC) for s in sources)
        )
        assert [(r.display_width, r.display_height) for r in results] == [(500, 375)] * 2
        started = {child.pid for child in multiprocessing.active_children()} - before
        assert len(started) == 2, "both workers start at the first render"
        assert pool.pending == 0
    finally:
        await pool.close()
    assert not {child.pid for child in multiprocessing.active_children()} & started


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("pdf_named.jpg", UnsupportedImageType),
        ("truncated.jpg", CorruptImage),
        ("bomb_30000x30000.png", ImageTooLarge),
    ],
)
async def test_worker_errors_reach_the_caller_intact(
    pool: RenditionPool, tmp_path: Path, name: str, error: type[Exception]
) -> None:
    source = tmp_path / name
    source.write_bytes(hostile_corpus()[name])
    with pytest.raises(error) as caught:
        await pool.render(source, out_dir(tmp_path, "out"), SPEC)
    assert type(caught.value) is error
    assert caught.value.args  # rebuilt with its message, not an empty shell
    assert pool.pending == 0


async def test_busy_when_workers_and_queue_are_full(pool: RenditionPool, tmp_path: Path) -> None:
    first, second = fifo(tmp_path, "first"), fifo(tmp_path, "second")
    running = asyncio.create_task(pool.render(first, out_dir(tmp_path, "a"), SPEC))
    queued = asyncio.create_task(pool.render(second, out_dir(tmp_path, "b"), SPEC))
    writer = await wait_for_reader(first)  # the worker is busy with the first job
    assert pool.pending == 2

    with pytest.raises(PipelineBusy) as caught:
        await pool.render(tmp_path / "third", out_dir(tmp_path, "c"), SPEC)
    assert (caught.value.status, caught.value.headers) == (503, {"Retry-After": "2"})

    with writer:
        await asyncio.to_thread(writer.write, PHOTO)
    await feed(second, PHOTO)
    assert (await running).display_width == (await queued).display_width == 500
    assert pool.pending == 0
    third = tmp_path / "third"
    third.write_bytes(PHOTO)
    await pool.render(third, out_dir(tmp_path, "d"), SPEC)  # accepted again


async def test_cancelled_render_keeps_its_slot_until_the_worker_is_done(
    pool: RenditionPool, tmp_path: Path
) -> None:
    source = fifo(tmp_path, "slow")
    task = asyncio.create_task(pool.render(source, out_dir(tmp_path, "a"), SPEC))
    writer = await wait_for_reader(source)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.pending == 1  # the worker is still busy with it
    with writer:
        await asyncio.to_thread(writer.write, PHOTO)
    # One worker: the next job's result comes back after the cancelled job's completion, whose
    # slot release was scheduled first.
    follower = tmp_path / "follower"
    follower.write_bytes(PHOTO)
    await pool.render(follower, out_dir(tmp_path, "b"), SPEC)
    assert pool.pending == 0


async def test_pool_survives_a_worker_crash(pool: RenditionPool, tmp_path: Path) -> None:
    source = fifo(tmp_path, "upload")
    task = asyncio.create_task(pool.render(source, out_dir(tmp_path, "a"), SPEC))
    writer = await wait_for_reader(source)
    await kill_workers()
    writer.close()
    # The job is retried alone in a fresh process, which opens the FIFO again.
    await feed(source, PHOTO)
    result = await task
    assert result.display_width == 500
    assert (tmp_path / "a" / "display.jpg").exists()

    # The replaced pool takes new work.
    again = tmp_path / "again"
    again.write_bytes(PHOTO)
    assert (await pool.render(again, out_dir(tmp_path, "b"), SPEC)).display_width == 500
    assert pool.pending == 0


async def test_photo_that_crashes_workers_twice_is_reported_corrupt(
    pool: RenditionPool, tmp_path: Path
) -> None:
    source = fifo(tmp_path, "poison")
    task = asyncio.create_task(pool.render(source, out_dir(tmp_path, "a"), SPEC))
    for _ in range(2):  # on its worker, then once more on a fresh one
        writer = await wait_for_reader(source)
        await kill_workers()
        writer.close()
    with pytest.raises(CorruptImage) as caught:
        await task
    assert caught.value.status == 422

    after = tmp_path / "after"
    after.write_bytes(PHOTO)
    assert (await pool.render(after, out_dir(tmp_path, "b"), SPEC)).display_width == 500
    assert pool.pending == 0


async def test_a_worker_that_dies_while_idle_is_replaced(
    pool: RenditionPool, tmp_path: Path
) -> None:
    await kill_workers()
    source = tmp_path / "upload"
    source.write_bytes(PHOTO)
    # The job waits for the replacement instead of failing: the dead worker had no job.
    assert (await pool.render(source, out_dir(tmp_path, "a"), SPEC)).display_width == 500
    assert len(multiprocessing.active_children()) >= 1
    assert pool.pending == 0


async def test_workers_ignore_ctrl_c_and_close_lets_accepted_jobs_finish(
    pool: RenditionPool, tmp_path: Path
) -> None:
    source = fifo(tmp_path, "upload")
    task = asyncio.create_task(pool.render(source, out_dir(tmp_path, "a"), SPEC))
    writer = await wait_for_reader(source)
    (worker,) = multiprocessing.active_children()
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGINT)  # what a Ctrl-C sends to the whole process group
    closing = asyncio.create_task(pool.close())
    with writer:
        await asyncio.to_thread(writer.write, PHOTO)
    assert (await task).display_width == 500
    await closing
    assert worker.exitcode == 0  # it finished the job, then left when its pipe closed
    with pytest.raises(PipelineBusy):
        await pool.render(tmp_path / "later", out_dir(tmp_path, "b"), SPEC)


async def test_stage_and_render_stages_bytes_or_moves_a_spilled_body(
    pool: RenditionPool, tmp_path: Path
) -> None:
    in_memory = tmp_path / "staging" / "key-a"
    in_memory.parent.mkdir()
    # 1 MiB past the JPEG's end (decoders ignore it): more than a socket takes at once, so
    # the job message is finished by the loop, not written in one blocking call.
    body = PHOTO + bytes(1024 * 1024)
    result = await pool.stage_and_render(body, in_memory, SPEC)
    assert result.display_width == 500
    assert (in_memory / "original").read_bytes() == body
    assert sorted(p.name for p in in_memory.iterdir()) == ["display.jpg", "original", "thumb.jpg"]

    spilled = tmp_path / "body.part"
    spilled.write_bytes(PHOTO)
    on_disk = tmp_path / "staging" / "key-b"
    assert (await pool.stage_and_render(spilled, on_disk, SPEC)).display_width == 500
    assert not spilled.exists() and (on_disk / "original").read_bytes() == PHOTO
    assert pool.pending == 0


async def test_stage_and_render_is_retried_after_its_worker_dies_mid_job(
    pool: RenditionPool, tmp_path: Path
) -> None:
    # The spilled body is a FIFO: the worker moves it into the folder, then blocks reading it.
    body = fifo(tmp_path, "body.part")
    folder = tmp_path / "staging" / "key"
    folder.parent.mkdir()
    task = asyncio.create_task(pool.stage_and_render(body, folder, SPEC))

    def open_moved_fifo() -> BinaryIO:
        # Without O_CREAT: the FIFO under its old name if the worker has not moved it yet
        # (the open waits for the reader whatever the rename does meanwhile), else the new.
        for path in (body, folder / "original"):
            with contextlib.suppress(FileNotFoundError):
                return os.fdopen(os.open(path, os.O_WRONLY), "wb")
        raise AssertionError("the FIFO is in neither place")

    writer = await asyncio.wait_for(asyncio.to_thread(open_moved_fifo), timeout=60)
    await kill_workers()
    writer.close()
    # The retry finds the folder made and the body already moved, and renders the original.
    await feed(folder / "original", PHOTO)
    assert (await task).display_width == 500
    assert not body.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["display.jpg", "original", "thumb.jpg"]


async def test_render_needs_start_and_stops_at_close(tmp_path: Path) -> None:
    pool = RenditionPool(workers=1, queue_limit=0)
    source = tmp_path / "upload"
    source.write_bytes(PHOTO)
    with pytest.raises(RuntimeError, match="start"):
        await pool.render(source, out_dir(tmp_path, "a"), SPEC)
    await pool.start()
    await pool.render(source, out_dir(tmp_path, "b"), SPEC)
    await pool.close()
    with pytest.raises(PipelineBusy):
        await pool.render(source, out_dir(tmp_path, "c"), SPEC)


def test_sizes_are_validated() -> None:
    with pytest.raises(ValueError):
        RenditionPool(workers=0, queue_limit=1)
    with pytest.raises(ValueError):
        RenditionPool(workers=1, queue_limit=-1)


def test_a_worker_whose_web_process_is_gone_exits_quietly(tmp_path: Path) -> None:
    """A worker that starts after its web process stopped (a Ctrl-C during start-up) finds
    the pipe closed: it exits 0 without a traceback on the terminal."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    ours.close()
    stderr = tmp_path / "stderr"
    worker = context.Process(target=_serve_with_stderr, args=(theirs, str(stderr)))
    worker.start()
    theirs.close()
    worker.join(timeout=60)
    assert worker.exitcode == 0
    assert "Traceback" not in stderr.read_text()


def _serve_with_stderr(connection: multiprocessing.connection.Connection, path: str) -> None:
    import sys

    from web.pipeline.pool import serve_jobs

    sys.stderr = open(path, "w")  # noqa: SIM115 (the process's whole life)
    serve_jobs(connection)
