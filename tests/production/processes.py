"""Real processes for production-mode tests: replicas (``imageshark serve``), rendition
workers (``imageshark worker``), a private Redis
server the test can stop and restart, and a TCP proxy in front of PostgreSQL that the test can
switch off (connections refused and cut) and on again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[2]

allowed = True
"""Whether child processes may start: tests/conftest.py clears it for each test not marked
``processes``, so such a test fails at its first start instead of joining ``make test-fast``."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Process:
    """A child process whose output is read line by line; waits for a line announcing ready."""

    def __init__(self, name: str, args: list[str], ready_marker: str, env: dict[str, str]):
        self.name = name
        self.args = args
        self.ready_marker = ready_marker
        self.env = env
        self.output: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._line = asyncio.Condition()

    async def start(self, timeout: float = 60) -> None:
        ready = asyncio.Event()
        reader = await self.spawn(ready)
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {waiter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            await self.give_up()

    async def spawn(self, ready: asyncio.Event) -> asyncio.Task[None]:
        """Start the process and the task that reads its output into ``output``, setting
        ``ready`` at the line containing the ready marker; returns that task, which ends when
        the process closes its output.

        :raises RuntimeError: in a test not marked ``processes`` (see :data:`allowed`).
        """
        if not allowed:
            raise RuntimeError(
                f"{self.name}: a test that starts server processes must be marked "
                "@pytest.mark.processes (tests/production is marked by its folder)"
            )
        self.process = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=REPO,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group, so a kill takes its worker processes too, as when a
            # container is killed.
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read(self.process, ready))
        return self._reader

    async def give_up(self) -> NoReturn:
        """Kill the process that did not become ready and raise RuntimeError with the end of
        its output."""
        await self.kill()
        tail = "\n".join(self.output[-30:])
        raise RuntimeError(f"{self.name} did not start:\n{tail}")

    async def _read(self, process: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            if self.ready_marker in line:
                ready.set()
            async with self._line:
                self._line.notify_all()

    async def wait_for_line(self, text: str, timeout: float = 60) -> str:
        """The first output line containing ``text``, once the process has written it.

        :raises TimeoutError: no such line within ``timeout`` seconds.
        """
        return await self.wait_for_output(lambda line: text in line, timeout)

    async def wait_for_output(
        self, match: Callable[[str], bool], timeout: float = 60, *, after: int = 0
    ) -> str:
        """The first output line from index ``after`` on for which ``match`` is true, waiting
        (on each new line, no polling) until the process writes one.

        :raises TimeoutError: no such line within ``timeout`` seconds.
        """

        def found() -> str | None:
            return next((line for line in self.output[after:] if match(line)), None)

        async with asyncio.timeout(timeout), self._line:
            await self._line.wait_for(lambda: found() is not None)
        line = found()
        assert line is not None
        return line

    async def wait_exit(self, timeout: float = 30) -> int:
        """Wait until the process has exited and its output is read to the end; its exit code."""
        assert self.process is not None
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def stop(self) -> None:
        """SIGTERM and wait (graceful shutdown)."""
        await self._signal(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL the whole process group and wait (a crash)."""
        await self._signal(signal.SIGKILL)

    async def _signal(self, sig: int) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        if sig == signal.SIGKILL:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(30):
                await self.process.wait()
        except TimeoutError:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftover workers, if any
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


class RedisServer(_Process):
    """A private ``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        super().__init__(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            "Ready to accept connections",
            dict(os.environ),
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class AzuriteServer(_Process):
    """Microsoft's Azure Blob Storage emulator (npm ``azurite``) on a free loopback port,
    keeping its blobs in ``folder``.

    :ivar account: the emulator's well-known account name; :data:`AZURITE_KEY` its key.
    """

    account = "devstoreaccount1"

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        super().__init__(
            "azurite",
            [
                # The package's own script, not through npx: one process, which SIGTERM stops.
                str(REPO / "node_modules" / ".bin" / "azurite-blob"),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(folder),
                "--skipApiVersionCheck",
                "--silent",
            ],
            "successfully listens on",
            dict(os.environ),
        )

    @property
    def endpoint(self) -> str:
        """The account's blob endpoint, ``http://127.0.0.1:<port>/devstoreaccount1``."""
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """For the Azure SDK (what the tests create containers with)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        )


AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's published development account key (not a secret: every emulator has it)."""


class Replica(_Process):
    """One ``imageshark serve`` process on a free loopback port.

    :param env: the environment (database, Redis, data folder...) on top of this process's.
    :param module: the module run with ``python -m`` (a test entry point may wrap
        ``web.cli``); it is given ``serve --host HOST --port PORT``.
    :param host: the interface to bind (``0.0.0.0``: every interface; tests still send
        traffic only to loopback and to network namespaces they create).
    """

    BIND_ATTEMPTS = 5

    def __init__(
        self, name: str, env: dict[str, str], module: str = "web.cli", host: str = "127.0.0.1"
    ) -> None:
        self.port = free_port()
        self.module = module
        self.host = host
        # uvicorn logs "Application startup complete" before it binds the port; this line
        # comes once it listens.
        super().__init__(name, self._command(), "Uvicorn running on", {**os.environ, **env})

    def _command(self) -> list[str]:
        return [
            sys.executable,
            *("-m", self.module, "serve"),
            *("--host", self.host, "--port", str(self.port)),
        ]

    async def start(self, timeout: float = 60) -> None:
        """Start and wait until it listens; on another port if its own was taken meanwhile
        (any process may bind a port between :func:`free_port` and the replica's bind)."""
        for attempt in range(self.BIND_ATTEMPTS):
            try:
                await super().start(timeout)
                return
            except RuntimeError:
                taken = any("address already in use" in line for line in self.output[-30:])
                if not taken or attempt == self.BIND_ATTEMPTS - 1:
                    raise
            self.port = free_port()
            self.args = self._command()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Worker(_Process):
    """One ``imageshark worker`` process, its health server on a free loopback port.

    :param env: the environment (database, Redis, store, ``IMAGESHARK_RENDITION_QUEUE=redis``)
        on top of this process's.
    :param module: the module run with ``python -m`` (a test entry point may wrap
        ``web.cli``); it is given ``worker --host 127.0.0.1 --port PORT``.
    """

    def __init__(self, name: str, env: dict[str, str], module: str = "web.cli") -> None:
        self.port = free_port()
        super().__init__(
            name,
            [
                sys.executable,
                *("-m", module, "worker"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            "rendition worker ready",
            {**os.environ, **env},
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class TcpProxy:
    """A loopback TCP proxy whose :meth:`cut` refuses new connections and drops open ones, like
    a network that goes away; :meth:`restore` brings it back on the same port.

    :param target: (host, port) of the real server.
    """

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    async def restore(self) -> None:
        """Accept and forward connections (again)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and abort every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self._transports |= pair  # type: ignore[arg-type]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._transports -= pair  # type: ignore[arg-type]

    def postgres_url(self, database: str) -> str:
        """A PostgreSQL URL for ``database`` through this proxy (trust auth as postgres)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextlib.asynccontextmanager
async def running(*processes: _Process) -> AsyncIterator[None]:
    """Start processes together; stop (SIGTERM) whatever is still running at the end."""
    try:
        await asyncio.gather(*(process.start() for process in processes))
        yield
    finally:
        await asyncio.gather(*(process.stop() for process in processes))
