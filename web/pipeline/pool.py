"""The asynchronous face of the image pipeline: a process pool behind a bounded queue.

Rendering is CPU-bound (decode, resize, encode: tens of milliseconds per photo), so it runs in
worker processes and the event loop only waits on futures. Work beyond the workers is queued up
to a limit and then refused with :class:`PipelineBusy` (503, ``Retry-After``): a burst of uploads
must not pile up unbounded memory or latency.

A worker that dies (a decoder crash, the OOM killer) breaks a ``ProcessPoolExecutor`` for every
job in it. The pool is then replaced and each affected job is retried once, alone, in a separate
one-worker "quarantine" executor: innocent bystanders succeed, and the photo that crashes a
worker again is reported as :class:`~web.pipeline.formats.CorruptImage` (422) instead of being
retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TypeVar

from web.errors import ApiError
from web.pipeline.formats import CorruptImage
from web.pipeline.renditions import (
    FullRenditionResult,
    RenditionResult,
    RenditionSpec,
    init_worker,
    render_file,
    render_full_file,
    warm_up,
)

_Result = TypeVar("_Result")
# A job run in a worker: (source, out_dir, spec) -> result. Must be a module-level function
# (pickled by name).
_Job = Callable[[Path, Path, RenditionSpec], _Result]

RETRY_AFTER_SECONDS = 2


class PipelineBusy(ApiError):
    """503: every worker is busy and the queue is full; the client should retry shortly.

    Carries ``Retry-After: 2`` (seconds).
    """

    def __init__(self) -> None:
        super().__init__(
            503,
            "busy",
            "The server is busy processing other photos; try again in a few seconds.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def __reduce__(self) -> tuple[type[PipelineBusy], tuple[()]]:
        return (type(self), ())


def _context() -> BaseContext:
    # Not fork: the parent runs an event loop and threads, whose locks a forked child would
    # inherit mid-use. forkserver forks workers from a clean server that has already imported
    # the pipeline, so replacing a crashed pool costs milliseconds, not an interpreter start.
    # It also preloads NumPy and OpenCV, which only the workers use (the web process never
    # imports them): the workers share those pages instead of loading ~58 MB each.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["web.pipeline.renditions", "numpy", "cv2"])
        return context
    return multiprocessing.get_context("spawn")


class RenditionPool:
    """A pool of ``workers`` rendering processes with room for ``queue_limit`` waiting jobs.

    Create it, ``await start()`` in the application's lifespan, ``await render(...)`` per
    upload, and ``await close()`` at shutdown.

    :param workers: worker processes (usually the CPU cores available), at least 1.
    :param queue_limit: renders allowed to wait for a worker, at least 0; at most
        ``workers + queue_limit`` renders are accepted at once.
    :raises ValueError: on ``workers < 1`` or ``queue_limit < 0``.
    """

    def __init__(self, workers: int, queue_limit: int) -> None:
        if workers < 1 or queue_limit < 0:
            raise ValueError("need workers >= 1 and queue_limit >= 0")
        self._workers = workers
        self._capacity = workers + queue_limit
        self._pending = 0
        self._context = _context()
        self._executor: ProcessPoolExecutor | None = None
        self._quarantine: ProcessPoolExecutor | None = None
        self._quarantine_lock = asyncio.Lock()
        self._closing = False
        # Full-resolution renders in progress, by output folder: concurrent requests for the
        # same photo share one job instead of rendering it twice.
        self._full_renders: dict[Path, asyncio.Future[FullRenditionResult]] = {}

    @property
    def pending(self) -> int:
        """Renders accepted and not finished (running plus waiting)."""
        return self._pending

    async def start(self) -> None:
        """Start the worker processes and wait until every one has warmed up (a coroutine).

        :raises BrokenProcessPool: if a worker cannot start.
        :raises RuntimeError: if already started.
        """
        if self._executor is not None:
            raise RuntimeError("RenditionPool is already started")
        self._closing = False
        self._executor, warming = self._new_executor(self._workers)
        await asyncio.gather(*(asyncio.wrap_future(future) for future in warming))

    async def close(self) -> None:
        """Stop accepting renders, let accepted ones finish, stop the workers (a coroutine)."""
        self._closing = True
        executors = [e for e in (self._executor, self._quarantine) if e is not None]
        self._executor = self._quarantine = None

        def shut_down() -> None:
            for executor in executors:
                executor.shutdown(wait=True)

        await asyncio.to_thread(shut_down)

    async def render(self, source: Path, out_dir: Path, spec: RenditionSpec) -> RenditionResult:
        """Render ``source`` into ``out_dir/display.jpg`` and ``out_dir/thumb.jpg`` (a coroutine).

        ``source``, both files and ``out_dir``'s entries are fsynced before this returns (see
        :func:`~web.pipeline.renditions.render_file`).

        :param source: the uploaded file; read by a worker process.
        :param out_dir: an existing directory for the renditions, that no one reads until this
            returns (the upload's staging folder).
        :param spec: sizes, qualities and the pixel limit.
        :returns: what was rendered.
        :raises PipelineBusy: (503) ``workers + queue_limit`` renders are already in progress,
            or the pool is shutting down.
        :raises UnsupportedImageType: (415) not an accepted photo type.
        :raises CorruptImage: (422) truncated or undecodable, or it crashed a worker twice (once
            in the pool, once alone).
        :raises ImageTooLarge: (413) more pixels than ``spec.max_pixels``.
        :raises OSError: if ``source`` cannot be read or ``out_dir`` written (in the worker).
        :raises RuntimeError: if :meth:`start` was not awaited.
        """
        return await self._submit(render_file, source, out_dir, spec)

    async def render_full(
        self, source: Path, out_dir: Path, spec: RenditionSpec
    ) -> FullRenditionResult:
        """Render ``source`` at full resolution into ``out_dir/full.jpg`` (a coroutine).

        The file is fsynced before this returns (see
        :func:`~web.pipeline.renditions.render_full_file`). Calls for the same ``out_dir``
        while one is in progress share its job and its outcome; cancelling one caller does not
        cancel the job for the others. Counts against the same bound as :meth:`render`.

        :param source: the original; read by a worker process.
        :param out_dir: the existing folder where ``full.jpg`` is written.
        :param spec: ``max_pixels`` and ``full_quality`` are used.
        :returns: the size of ``full.jpg``.
        :raises PipelineBusy: (503) the pool is full or shutting down.
        :raises UnsupportedImageType, CorruptImage, ImageTooLarge: as for :meth:`render`.
        :raises OSError: if ``source`` cannot be read or ``out_dir`` written (in the worker).
        :raises RuntimeError: if :meth:`start` was not awaited.
        """
        shared = self._full_renders.get(out_dir)
        if shared is None:
            shared = asyncio.ensure_future(self._submit(render_full_file, source, out_dir, spec))
            self._full_renders[out_dir] = shared

            def forget(done: asyncio.Future[FullRenditionResult]) -> None:
                if self._full_renders.get(out_dir) is done:
                    del self._full_renders[out_dir]
                if not done.cancelled():
                    done.exception()  # retrieved: no "never retrieved" warning if all left

            shared.add_done_callback(forget)
        return await asyncio.shield(shared)

    async def _submit(
        self, function: _Job[_Result], source: Path, out_dir: Path, spec: RenditionSpec
    ) -> _Result:
        """Run ``function(source, out_dir, spec)`` in a worker within the pool's bound."""
        if self._closing:
            raise PipelineBusy()
        if self._executor is None:
            raise RuntimeError("RenditionPool.start() must be awaited before rendering")
        if self._pending >= self._capacity:
            raise PipelineBusy()
        self._pending += 1
        executor = self._executor
        job: list[Future[_Result]] = []
        try:
            try:
                return await self._run(executor, job, function, source, out_dir, spec)
            except BrokenProcessPool:
                self._replace_broken_pool(executor)
                return await self._run_isolated(job, function, source, out_dir, spec)
        finally:
            self._release_when_done(job[-1] if job else None)

    async def _run(
        self,
        executor: ProcessPoolExecutor,
        job: list[Future[_Result]],
        function: _Job[_Result],
        source: Path,
        out_dir: Path,
        spec: RenditionSpec,
    ) -> _Result:
        future = executor.submit(function, source, out_dir, spec)
        job.append(future)
        return await asyncio.wrap_future(future)

    async def _run_isolated(
        self,
        job: list[Future[_Result]],
        function: _Job[_Result],
        source: Path,
        out_dir: Path,
        spec: RenditionSpec,
    ) -> _Result:
        # One job at a time: if this photo crashes the worker, no other job is lost with it.
        async with self._quarantine_lock:
            if self._closing:
                raise PipelineBusy()
            if self._quarantine is None:
                self._quarantine, _ = self._new_executor(1)
            quarantine = self._quarantine
            try:
                return await self._run(quarantine, job, function, source, out_dir, spec)
            except BrokenProcessPool:
                if self._quarantine is quarantine:
                    self._quarantine = None
                quarantine.shutdown(wait=False)
                raise CorruptImage() from None

    def _replace_broken_pool(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is not broken:
            return  # another job already replaced it, or the pool is closing
        self._executor, _ = self._new_executor(self._workers)
        broken.shutdown(wait=False, cancel_futures=True)

    def _new_executor(self, workers: int) -> tuple[ProcessPoolExecutor, list[Future[int]]]:
        """A started executor and its warm-up jobs, one per worker.

        Workers are spawned on demand, one per submitted job while none is idle, so submitting
        ``workers`` jobs at once starts them all; the barrier in each worker's initializer then
        holds every warm-up job until all workers are initialised.
        """
        ready = self._context.Barrier(workers)
        executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=self._context,
            initializer=init_worker,
            initargs=(True, ready),
        )
        return executor, [executor.submit(warm_up) for _ in range(workers)]

    def _release_when_done(self, future: Future[_Result] | None) -> None:
        """Free this render's slot once its job no longer occupies a worker.

        A cancelled request (the client went away) cancels its job only if it has not started;
        a running job keeps its slot until it finishes, so the bound stays true.
        """
        if future is None or future.done():
            self._pending -= 1
            return
        loop = asyncio.get_running_loop()

        def release(_: Future[_Result]) -> None:
            # Runs in the executor's management thread.
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._release)

        future.add_done_callback(release)

    def _release(self) -> None:
        self._pending -= 1
