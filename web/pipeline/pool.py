"""The asynchronous face of the image pipeline: worker processes behind a bounded queue.

Rendering is CPU-bound (decode, resize, encode: tens of milliseconds per photo), so it runs in
worker processes and the event loop only waits on futures. Work beyond the workers is queued up
to a limit and then refused with :class:`PipelineBusy` (503, ``Retry-After``): a burst of uploads
must not pile up unbounded memory or latency.

Each worker is one process with one socket pair to the web process, on which the event loop
itself writes jobs and reads replies (non-blocking, ``loop.add_reader``): a job is one message
out to an idle worker and one message back, with no thread of the web process in between to
take the GIL from the event loop (docs/decisions/0006-rendition-pool-without-threads.md).

Each worker runs one job at a time, so a worker that dies (a decoder crash, the OOM killer) takes
exactly one job with it. That job is retried once, in a fresh worker: an innocent bystander of a
killed process succeeds, and the photo that crashes a worker again is reported as
:class:`~web.pipeline.formats.CorruptImage` (422) instead of being retried forever. The dead
worker is replaced; no other job notices.

Two bounds keep one photo, and one room, from holding the pool. A job that runs longer than
``timeout_seconds`` has its worker killed and fails with :class:`ImageTooCostly` (422), without
a retry (it would only cost as much again). And the pool is shared between rooms (any key the
caller passes): each room has its own queue and its own bound on accepted jobs, so a room's
burst is refused with 503 for that room while other rooms still get in, and a free worker takes
the next job of the waiting room with the fewest jobs running (the longest-waiting room among
equals), so a room that holds workers does not also hold the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

from web.errors import ApiError
from web.pipeline.formats import CorruptImage, ImageTooCostly
from web.pipeline.renditions import (
    FullRenditionResult,
    RenditionResult,
    RenditionSpec,
    init_worker,
    render_file,
    render_full_file,
    stage_and_render,
    stage_and_render_temporary,
)

logger = logging.getLogger(__name__)

_Result = TypeVar("_Result")
# A job run in a worker: (source, out_dir, spec) -> result, where source is a path or a file's
# bytes. Must be a module-level function (pickled by name).
_JobFunction = Callable[[Any, Path, RenditionSpec], _Result]

RETRY_AFTER_SECONDS = 2
ATTEMPTS = 2
"""Runs of one job before a worker crash is blamed on the photo: once, then once more alone."""
RESPAWN_DELAY_SECONDS = 1.0
"""Wait before replacing a worker that died before it was ready (a start-up fault would
otherwise respawn in a tight loop)."""
STOP_TIMEOUT_SECONDS = 10.0
"""How long :meth:`RenditionPool.close` lets workers exit by themselves before killing them."""
_READY = b"ready"
_HEADER = struct.Struct("!i")  # multiprocessing.connection's frame header: a message's length
_READ_BYTES = 256 * 1024


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


class WorkerStartError(RuntimeError):
    """A rendition worker exited before it was ready (raised by :meth:`RenditionPool.start`)."""


def _context() -> ForkServerContext | SpawnContext:
    # Not fork (the parent's locks would be inherited mid-use): a fork server that preloads the
    # pipeline, NumPy and OpenCV (docs/decisions/0007-forkserver-preloads-numpy-and-opencv.md).
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["web.pipeline.renditions", "numpy", "cv2"])
        return context
    return multiprocessing.get_context("spawn")


def serve_jobs(connection: Connection) -> None:
    """A worker process's main function: initialise, then run jobs until the pipe closes.

    Receives pickled ``(function, args)`` messages and answers each with a pickled
    ``(True, result)`` or ``(False, exception)``. Ignores SIGINT: the web process decides when
    its workers stop (by closing the pipe), so a Ctrl-C lets the uploads in flight finish.

    :param connection: the worker's end of its socket pair to the web process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(True)
    try:
        connection.send_bytes(_READY)
    except (BrokenPipeError, ConnectionResetError):
        return  # the web process stopped while this one started: nothing to report
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, ConnectionResetError):
            return
        function, args = pickle.loads(message)
        try:
            reply: tuple[bool, Any] = (True, function(*args))
        except Exception as exc:  # every failure goes back to the caller, like an executor's
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable result or exception
            data = pickle.dumps((False, RuntimeError(f"unpicklable worker reply: {exc!r}")))
        try:
            connection.send_bytes(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the web process is gone (its time limit, or it stopped)


@dataclass(eq=False)
class _Job:
    message: bytes
    future: asyncio.Future[Any]
    room: Hashable
    attempts: int = 0
    deadline: asyncio.TimerHandle | None = None  # while a worker runs it


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    channel: socket.socket  # the web process's end, non-blocking
    ready: asyncio.Future[None]
    job: _Job | None = None
    alive: bool = True
    received: bytearray = field(default_factory=bytearray)
    sending: asyncio.Task[None] | None = None  # the rest of a job message too big to send at once


class RenditionPool:
    """A pool of ``workers`` rendering processes with room for ``queue_limit`` waiting jobs.

    Create it, ``await start()`` in the application's lifespan, ``await render(...)`` per
    upload, and ``await close()`` at shutdown. All methods run on the event loop's thread.

    :param workers: worker processes (usually the CPU cores available), at least 1.
    :param queue_limit: renders allowed to wait for a worker, at least 0; at most
        ``workers + queue_limit`` renders are accepted at once.
    :param room_queue_limit: renders of one room allowed to wait, at least 0; at most
        ``workers + room_queue_limit`` renders of one room are accepted at once. Default:
        ``queue_limit`` (no bound beyond the pool's).
    :param timeout_seconds: longest a worker may spend on one job, seconds; ``None``: no limit.
    :param on_demand: ``start()`` starts no worker; the first render starts them all and waits
        for them (the test suite's servers, most of which never render; a service starts them
        at start-up so that its first upload does not wait).
    :raises ValueError: on ``workers < 1``, a negative limit, or ``timeout_seconds <= 0``.
    """

    def __init__(
        self,
        workers: int,
        queue_limit: int,
        *,
        room_queue_limit: int | None = None,
        timeout_seconds: float | None = None,
        on_demand: bool = False,
    ) -> None:
        if room_queue_limit is None:
            room_queue_limit = queue_limit
        if workers < 1 or queue_limit < 0 or room_queue_limit < 0:
            raise ValueError("need workers >= 1 and queue limits >= 0")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("need timeout_seconds > 0")
        self._size = workers
        self._capacity = workers + queue_limit
        self._room_capacity = workers + room_queue_limit
        self._timeout = timeout_seconds
        self._pending = 0
        self._room_pending: collections.Counter[Hashable] = collections.Counter()
        self._room_running: collections.Counter[Hashable] = collections.Counter()
        self._served: dict[Hashable, int] = {}  # when each room with pending jobs last started one
        self._starts = 0
        self._context = _context()
        self._started = False
        self._closing = False
        self._on_demand = on_demand
        self._starting: asyncio.Task[None] | None = None  # on demand: the workers' start
        self._workers: set[_Worker] = set()
        self._idle: list[_Worker] = []
        # Waiting jobs by room, rooms in the order they last had a job taken (or arrived).
        self._queues: collections.OrderedDict[Hashable, collections.deque[_Job]] = (
            collections.OrderedDict()
        )
        self._respawns: set[asyncio.Task[None]] = set()
        self._drained: asyncio.Event | None = None
        # Full-resolution renders in progress, by output folder: concurrent requests for the
        # same photo share one job instead of rendering it twice.
        self._full_renders: dict[Path, asyncio.Future[FullRenditionResult]] = {}

    @property
    def pending(self) -> int:
        """Renders accepted and not finished (running plus waiting)."""
        return self._pending

    async def start(self) -> None:
        """Start the worker processes and wait until every one has warmed up (a coroutine);
        with ``on_demand``, only mark the pool started (the first render starts them).

        :raises WorkerStartError: if a worker exits before it is ready.
        :raises RuntimeError: if already started.
        """
        if self._started:
            raise RuntimeError("RenditionPool is already started")
        self._started = True
        self._closing = False
        if self._on_demand:
            return
        try:
            await self._start_workers()
        except WorkerStartError:
            await self.close()
            raise

    async def _start_workers(self) -> None:
        workers = await self._spawn(self._size)
        await asyncio.gather(*(worker.ready for worker in workers))
        self._idle.extend(worker for worker in workers if worker.alive)
        self._dispatch()

    async def _start_on_demand(self) -> None:
        # A worker that dies at start-up is replaced (``_lost``), as at any other time; the
        # queued jobs wait for the replacement.
        with contextlib.suppress(WorkerStartError):
            await self._start_workers()

    async def close(self) -> None:
        """Stop accepting renders, let accepted ones finish, stop the workers (a coroutine)."""
        self._closing = True
        for task in list(self._respawns):
            task.cancel()
        if self._starting is not None:
            await self._starting  # its workers are then in ``_workers``, stopped below
        if self._pending:
            if any(worker.alive for worker in self._workers):
                self._drained = asyncio.Event()
                await self._drained.wait()
            else:
                self._fail_queue()  # nobody left to run them
        workers = list(self._workers)
        self._workers.clear()
        self._idle.clear()
        for worker in workers:
            self._forget(worker)
        await asyncio.to_thread(_stop_processes, [worker.process for worker in workers])

    async def render(
        self, source: Path, out_dir: Path, spec: RenditionSpec, *, room: Hashable = None
    ) -> RenditionResult:
        """Render ``source`` into ``out_dir/display.jpg`` and ``out_dir/thumb.jpg`` (a coroutine).

        ``source``, both files and ``out_dir``'s entries are fsynced before this returns (see
        :func:`~web.pipeline.renditions.render_file`).

        :param source: the uploaded file; read by a worker process.
        :param out_dir: an existing directory for the renditions, that no one reads until this
            returns (the upload's staging folder).
        :param spec: sizes, qualities and the pixel limit.
        :param room: whose render this is, for sharing the pool fairly (any hashable key).
        :returns: what was rendered.
        :raises PipelineBusy: (503) ``workers + queue_limit`` renders are already in progress,
            or ``workers + room_queue_limit`` of ``room``'s, or the pool is shutting down.
        :raises ImageTooCostly: (422) the render ran longer than ``timeout_seconds``.
        :raises UnsupportedImageType: (415) not an accepted photo type.
        :raises CorruptImage: (422) truncated or undecodable, or it crashed a worker twice.
        :raises ImageTooLarge: (413) more pixels than ``spec.max_pixels``.
        :raises ImageTooCostlyToDecode: (413) more than ``spec.max_decode_bytes`` to decode.
        :raises OSError: if ``source`` cannot be read or ``out_dir`` written (in the worker).
        :raises RuntimeError: if :meth:`start` was not awaited.
        """
        return await self._submit(render_file, source, out_dir, spec, room)

    async def stage_and_render(
        self,
        upload: Path | bytes,
        folder: Path,
        spec: RenditionSpec,
        *,
        room: Hashable = None,
        durable: bool = True,
    ) -> RenditionResult:
        """Stage an upload into ``folder`` and render it there, as one job (a coroutine).

        Like :meth:`render` of ``folder/original``, with the staging done by the worker too
        (:func:`~web.pipeline.renditions.stage_and_render`), so the upload path makes no
        thread hop in the web process for it. An upload small enough to be received in memory
        (``web.uploads.SPOOL_BYTES``, 1 MiB) travels in the job message; for a larger one,
        spilled to disk, only its path does.

        :param upload: the uploaded file's bytes, or the path of the spilled request body
            (moved into ``folder``).
        :param folder: the new image's staging folder; made by the worker.
        :param room: whose upload this is (see :meth:`render`).
        :param durable: False: nothing in ``folder`` is fsynced, for a folder that is only a
            temporary copy (:func:`~web.pipeline.renditions.stage_and_render_temporary`).
        :returns: what was rendered.
        :raises: as :meth:`render`; OSError also if the upload cannot be staged.
        """
        job = stage_and_render if durable else stage_and_render_temporary
        return await self._submit(job, upload, folder, spec, room)

    async def render_full(
        self, source: Path, out_dir: Path, spec: RenditionSpec, *, room: Hashable = None
    ) -> FullRenditionResult:
        """Render ``source`` at full resolution into ``out_dir/full.jpg`` (a coroutine).

        The file is fsynced before this returns (see
        :func:`~web.pipeline.renditions.render_full_file`). Calls for the same ``out_dir``
        while one is in progress share its job and its outcome; cancelling one caller does not
        cancel the job for the others. Counts against the same bound as :meth:`render`.

        :param source: the original; read by a worker process.
        :param out_dir: the existing folder where ``full.jpg`` is written.
        :param spec: ``max_pixels``, ``max_decode_bytes`` and ``full_quality`` are used.
        :param room: whose photo this is (see :meth:`render`).
        :returns: the size of ``full.jpg``.
        :raises PipelineBusy: (503) the pool, or ``room``'s share of it, is full, or it is
            shutting down.
        :raises ImageTooCostly: (422) the render ran longer than ``timeout_seconds``.
        :raises UnsupportedImageType, CorruptImage, ImageTooLarge: as for :meth:`render`.
        :raises OSError: if ``source`` cannot be read or ``out_dir`` written (in the worker).
        :raises RuntimeError: if :meth:`start` was not awaited.
        """
        shared = self._full_renders.get(out_dir)
        if shared is None:
            shared = asyncio.ensure_future(
                self._submit(render_full_file, source, out_dir, spec, room)
            )
            self._full_renders[out_dir] = shared

            def forget(done: asyncio.Future[FullRenditionResult]) -> None:
                if self._full_renders.get(out_dir) is done:
                    del self._full_renders[out_dir]
                if not done.cancelled():
                    done.exception()  # retrieved: no "never retrieved" warning if all left

            shared.add_done_callback(forget)
        return await asyncio.shield(shared)

    async def _submit(
        self,
        function: _JobFunction[_Result],
        source: Path | bytes,
        out_dir: Path,
        spec: RenditionSpec,
        room: Hashable,
    ) -> _Result:
        """Run ``function(source, out_dir, spec)`` in a worker within the pool's bounds.

        A caller cancelled while its job waits for a worker withdraws the job; once a worker
        runs it, the job keeps its slot until the worker is done, so the bound stays true.
        """
        if self._closing:
            raise PipelineBusy()
        if not self._started:
            raise RuntimeError("RenditionPool.start() must be awaited before rendering")
        if self._pending >= self._capacity or self._room_pending[room] >= self._room_capacity:
            raise PipelineBusy()
        message = pickle.dumps((function, (source, out_dir, spec)), pickle.HIGHEST_PROTOCOL)
        job = _Job(message, asyncio.get_running_loop().create_future(), room)
        self._pending += 1
        self._room_pending[room] += 1
        self._queues.setdefault(room, collections.deque()).append(job)
        if self._on_demand and self._starting is None:
            self._starting = asyncio.ensure_future(self._start_on_demand())
        self._dispatch()
        result: _Result = await job.future
        return result

    def _dispatch(self) -> None:
        """Give waiting jobs to idle workers: each the oldest job of the waiting room with the
        fewest jobs running, the room that waited longest among equals."""
        while self._queues and self._idle:
            room = min(self._queues, key=lambda r: (self._room_running[r], self._served.get(r, -1)))
            queue = self._queues[room]
            job = queue.popleft()
            if queue:
                self._queues.move_to_end(room)
            else:
                del self._queues[room]
            if job.future.done():  # its caller was cancelled before a worker took it
                self._release(job)
                continue
            worker = self._idle.pop()
            worker.job = job
            job.attempts += 1
            self._room_running[room] += 1
            self._starts += 1
            self._served[room] = self._starts
            if self._timeout is not None:
                job.deadline = asyncio.get_running_loop().call_later(
                    self._timeout, self._expire, worker, job
                )
            self._send(worker, job.message)

    def _expire(self, worker: _Worker, job: _Job) -> None:
        """``job`` outran the time limit on ``worker``: fail it for good, kill the worker."""
        if worker.job is not job or not worker.alive:
            return
        self._finish(worker)
        if not job.future.done():
            assert self._timeout is not None
            job.future.set_exception(ImageTooCostly(self._timeout))
        logger.warning(
            "rendition worker %s killed: job over %s s", worker.process.pid, self._timeout
        )
        with contextlib.suppress(OSError, ValueError, AttributeError):
            worker.process.kill()
        self._lost(worker)  # no job any more, so nothing is retried; a replacement starts

    def _finish(self, worker: _Worker, *, release: bool = True) -> _Job | None:
        """Take ``worker``'s job off it and out of the running counts; release its slot in the
        pool's bounds unless it is to be queued again (``release=False``)."""
        job, worker.job = worker.job, None
        if job is not None:
            if job.deadline is not None:
                job.deadline.cancel()
                job.deadline = None
            self._room_running[job.room] -= 1
            if not self._room_running[job.room]:
                del self._room_running[job.room]
            if release:
                self._release(job)
        return job

    def _send(self, worker: _Worker, message: bytes) -> None:
        """Write one framed message to ``worker`` without blocking the loop: what the socket
        does not take at once (a job carrying a large upload) is sent by a task."""
        frame = _HEADER.pack(len(message)) + message
        try:
            sent = worker.channel.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._lost(worker)
            return
        if sent < len(frame):
            rest = memoryview(frame)[sent:]
            loop = asyncio.get_running_loop()
            worker.sending = asyncio.ensure_future(loop.sock_sendall(worker.channel, rest))

            def sent_or_lost(done: asyncio.Future[None]) -> None:
                worker.sending = None
                if done.cancelled() or done.exception() is not None:
                    self._lost(worker)

            worker.sending.add_done_callback(sent_or_lost)

    def _on_readable(self, worker: _Worker) -> None:
        """The loop's reader callback: bytes of a reply or ready signal, or the worker's end."""
        try:
            chunk = worker.channel.recv(_READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._lost(worker)
            return
        received = worker.received
        received += chunk
        while worker.alive and len(received) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(received)
            if len(received) < _HEADER.size + size:
                return
            message = bytes(received[_HEADER.size : _HEADER.size + size])
            del received[: _HEADER.size + size]
            self._on_message(worker, message)

    def _on_message(self, worker: _Worker, data: bytes) -> None:
        if not worker.ready.done():
            worker.ready.set_result(None)
            return
        job = self._finish(worker)
        if job is None:  # a reply nobody asked for: a broken worker; replace it
            self._lost(worker)
            return
        if not job.future.done():  # else its caller was cancelled while it ran
            ok, value = pickle.loads(data)
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        self._idle.append(worker)
        self._dispatch()

    def _lost(self, worker: _Worker) -> None:
        """``worker`` died: retry or fail its job, and start a replacement."""
        if not worker.alive:
            return
        self._forget(worker)
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        running = worker.job
        retry = running is not None and not running.future.done() and running.attempts < ATTEMPTS
        job = self._finish(worker, release=not retry)
        if not worker.ready.done():
            worker.ready.set_exception(WorkerStartError("a rendition worker exited at start-up"))
            worker.ready.exception()  # retrieved here; start() re-raises it when it waits
            delay = RESPAWN_DELAY_SECONDS
        else:
            logger.warning(
                "rendition worker %s died (exit code %s)",
                worker.process.pid,
                worker.process.exitcode,
            )
            delay = 0.0
        if job is not None and retry:  # next in line, on a fresh worker
            self._queues.setdefault(job.room, collections.deque()).appendleft(job)
            self._queues.move_to_end(job.room, last=False)
        elif job is not None and not job.future.done():
            job.future.set_exception(CorruptImage())
        if not self._closing and self._started:
            task = asyncio.ensure_future(self._replace(delay))
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)
        elif self._drained is not None and not any(w.alive for w in self._workers):
            self._fail_queue()
        self._dispatch()

    async def _replace(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            (worker,) = await self._spawn(1)
        except Exception:
            logger.exception("could not start a rendition worker")
            task = asyncio.ensure_future(self._replace(RESPAWN_DELAY_SECONDS))
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)
            return
        with contextlib.suppress(WorkerStartError):
            await worker.ready
            if worker.alive and not self._closing:
                self._idle.append(worker)
                self._dispatch()

    async def _spawn(self, count: int) -> list[_Worker]:
        """Start ``count`` worker processes; their ``ready`` futures resolve once warm."""
        loop = asyncio.get_running_loop()
        pairs: list[tuple[socket.socket, Connection]] = []
        for _ in range(count):
            channel, worker_end = socket.socketpair()
            channel.setblocking(False)
            pairs.append((channel, Connection(worker_end.detach())))
        processes = [
            self._context.Process(
                target=serve_jobs, args=(child,), name="imageshark-renditions", daemon=True
            )
            for _, child in pairs
        ]

        def start() -> None:
            # Blocking: the first start launches the fork server (about a second of imports).
            for process in processes:
                process.start()

        try:
            await asyncio.to_thread(start)
        except BaseException:
            for channel, _ in pairs:
                channel.close()
            raise
        finally:
            for _, child in pairs:
                child.close()  # the worker holds its own copy; EOF now means it died
        workers = []
        for process, (channel, _) in zip(processes, pairs, strict=True):
            worker = _Worker(process, channel, loop.create_future())
            loop.add_reader(channel, self._on_readable, worker)
            self._workers.add(worker)
            workers.append(worker)
        return workers

    def _forget(self, worker: _Worker) -> None:
        """Stop reading from ``worker`` and close its pipe (it then exits if still running)."""
        if not worker.alive:
            return
        worker.alive = False
        if worker.sending is not None:
            worker.sending.cancel()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.channel)
        worker.channel.close()

    def _fail_queue(self) -> None:
        while self._queues:
            _, queue = self._queues.popitem(last=False)
            for job in queue:
                self._release(job)
                if not job.future.done():
                    job.future.set_exception(PipelineBusy())

    def _release(self, job: _Job) -> None:
        self._pending -= 1
        self._room_pending[job.room] -= 1
        if not self._room_pending[job.room]:
            del self._room_pending[job.room]
            self._served.pop(job.room, None)
        if self._pending == 0 and self._drained is not None:
            self._drained.set()


def _stop_processes(processes: list[BaseProcess]) -> None:
    """Wait for workers whose pipe was closed to exit; kill those that do not (blocking)."""
    for process in processes:
        if process.pid is None:
            continue
        process.join(STOP_TIMEOUT_SECONDS)
        if process.exitcode is None:
            process.kill()
            process.join()
