"""Receiving a ``multipart/form-data`` upload: spooled, size-limited while streaming.

The image service reads an upload through :class:`UploadBody`, knowing nothing of HTTP;
:class:`MultipartBody` is that body for a Starlette request, over :func:`receive_upload`.

Parsing is python-multipart's push parser; this module only feeds it the request body as it
arrives, keeps the ``file`` part in memory up to :data:`SPOOL_BYTES` and spills a larger one to
disk through aiofiles in batches of at least that size, and enforces the limits:

- a declared ``Content-Length`` over the limit is refused (413) before any body is read;
- the ``file`` part is counted as it streams and refused (413) the moment it passes the limit;
- other fields are capped at :data:`MAX_FIELD_BYTES`.

The SHA-256 of the file is computed incrementally per received chunk (about 64 KiB, tens of
microseconds each), so no pass over a large file ever runs on the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiofiles
import aiofiles.os
import anyio
from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from web.errors import ApiError

MAX_FIELD_BYTES = 16 * 1024
SPOOL_BYTES = 1024 * 1024
"""A file part up to this many bytes stays in memory (no file, no thread hop); a larger one is
written to disk in batches of at least this size, so a 4 MB photo costs four writes, not one
per 64 KiB network chunk. Memory per upload in flight is bounded by about twice this."""
# Room for the multipart framing and small fields around the file when checking Content-Length.
ENVELOPE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedUpload:
    """A file received from a multipart request: in memory (``body``) when it was at most
    :data:`SPOOL_BYTES`, else on disk (``path``); exactly one of the two is set.

    :ivar path: the file holding its bytes (caller owns and must move or delete it), or None.
    :ivar body: its bytes, or None.
    :ivar size: its length in bytes.
    :ivar sha256: hex digest of its bytes.
    :ivar filename: the name the client gave, untrusted and never stored.
    :ivar fields: the other form fields, decoded as UTF-8.
    """

    path: Path | None
    body: bytes | None
    size: int
    sha256: str
    filename: str | None
    fields: dict[str, str]

    @property
    def content(self) -> Path | bytes:
        """The file on disk (``path``) or its bytes (``body``), whichever it was received as."""
        if self.path is not None:
            return self.path
        assert self.body is not None, "a received upload has a path or a body"
        return self.body


class UploadBody(Protocol):
    """An upload's body as the image service reads it: one file and a few text fields."""

    async def receive(
        self,
        destination: Path,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """Read the whole body, enforcing the limits while it streams.

        :param destination: a path that does not exist yet, where a file too large for memory
            is spilled (the caller owns it afterwards); removed again on any error.
        :param max_bytes: largest accepted file, bytes.
        :param idle_timeout: longest wait for the next chunk, seconds (None: none).
        :param min_free_bytes: free space ``destination``'s disk must keep, bytes (None: not
            checked).
        :returns: the received file (with its size and SHA-256) and the other fields.
        :raises ApiError: as :func:`receive_upload` (415, 400, 413, 408, 507).
        """
        ...


class MultipartBody:
    """:class:`UploadBody` of a Starlette ``multipart/form-data`` request, streamed by
    :func:`receive_upload`.

    :param request: the upload request, its body not read yet.
    :param file_field: the form field holding the file.
    """

    def __init__(self, request: Request, *, file_field: str = "file") -> None:
        self.request = request
        self.file_field = file_field

    async def receive(
        self,
        destination: Path,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """See :meth:`UploadBody.receive`; also raises ``ClientDisconnect`` when the client
        goes away."""
        return await receive_upload(
            self.request,
            destination,
            max_bytes=max_bytes,
            file_field=self.file_field,
            idle_timeout=idle_timeout,
            min_free_bytes=min_free_bytes,
        )


class RawBody:
    """:class:`UploadBody` of a request whose body is the file itself (a direct upload's
    ``PUT`` to the service, see :mod:`web.images.direct`), streamed by :func:`receive_raw`.

    :param request: the request, its body not read yet.
    :param content_type: the ``Content-Type`` the request must carry (the one declared when
        the upload was asked for).
    :param declared_size: the size declared then, bytes: the body must be exactly as long.
    """

    def __init__(self, request: Request, *, content_type: str, declared_size: int) -> None:
        self.request = request
        self.content_type = content_type
        self.declared_size = declared_size

    async def receive(
        self,
        destination: Path,
        *,
        max_bytes: int,
        idle_timeout: float | None,
        min_free_bytes: int | None,
    ) -> ReceivedUpload:
        """See :meth:`UploadBody.receive`; the file is always written to ``destination``
        and fsynced (``path`` is set, ``body`` is None), whatever its size."""
        return await receive_raw(
            self.request,
            destination,
            content_type=self.content_type,
            declared_size=self.declared_size,
            max_bytes=max_bytes,
            idle_timeout=idle_timeout,
            min_free_bytes=min_free_bytes,
        )


async def receive_raw(
    request: Request,
    destination: Path,
    *,
    content_type: str,
    declared_size: int,
    max_bytes: int,
    idle_timeout: float | None = None,
    min_free_bytes: int | None = None,
) -> ReceivedUpload:
    """Receive a request body that is the file itself into ``destination``, durably.

    The same limits as :func:`receive_upload`: the declared ``Content-Length`` is checked
    before anything is read, the body is counted as it streams (413 the moment it passes
    ``max_bytes`` or ``declared_size``), each chunk waits at most ``idle_timeout``, the disk
    keeps ``min_free_bytes``; the SHA-256 is computed per chunk. Writes are batched by
    :data:`SPOOL_BYTES` and the file is fsynced before this returns.

    :param content_type: what the request's ``Content-Type`` must be (parameters ignored).
    :param declared_size: the exact length the body must have, bytes.
    :param max_bytes: the service's limit, bytes.
    :returns: the file (``path`` = ``destination``), its size and SHA-256; no fields.
    :raises ApiError: 415 ``content_type_mismatch``; 413 ``file_too_large``; 400
        ``size_mismatch`` (shorter than declared); 408 ``upload_timeout``; 507
        ``insufficient_storage``.
    :raises starlette.requests.ClientDisconnect: the client went away (destination removed).
    """
    sent_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if sent_type != content_type:
        raise ApiError(
            415,
            "content_type_mismatch",
            f"Send the body with Content-Type: {content_type}, as the upload declared.",
        )
    limit = min(max_bytes, declared_size)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _over(limit, max_bytes)
    if min_free_bytes is not None:
        await require_free_space(destination.parent, declared_size, min_free_bytes)
    digest = hashlib.sha256()
    size = 0
    buffered: list[bytes] = []
    buffered_size = 0
    out: Any = await aiofiles.open(destination, "wb")
    try:
        async for chunk in _chunks(request, idle_timeout):
            size += len(chunk)
            if size > limit:
                raise _over(limit, max_bytes)
            digest.update(chunk)
            buffered.append(chunk)
            buffered_size += len(chunk)
            if buffered_size >= SPOOL_BYTES:
                await _write(out, b"".join(buffered))
                buffered.clear()
                buffered_size = 0
        if size != declared_size:
            raise ApiError(
                400,
                "size_mismatch",
                f"The body has {size} bytes; the upload declared {declared_size}.",
            )
        if buffered:
            await _write(out, b"".join(buffered))
        await out.flush()
        await to_thread.run_sync(os.fsync, out.fileno())
        await out.close()
    except BaseException:
        await out.close()
        await _remove(destination)
        raise
    return ReceivedUpload(
        path=destination,
        body=None,
        size=size,
        sha256=digest.hexdigest(),
        filename=None,
        fields={},
    )


def _over(limit: int, max_bytes: int) -> ApiError:
    if limit < max_bytes:
        return ApiError(
            413, "file_too_large", f"The body is larger than the {limit} bytes the upload declared."
        )
    return too_large(max_bytes)


def too_large(max_bytes: int) -> ApiError:
    """The 413 error for a file over ``max_bytes``."""
    return ApiError(
        413,
        "file_too_large",
        f"The file is larger than the limit of {max_bytes // (1024 * 1024)} MiB.",
    )


class _PartCollector:
    """python-multipart callbacks that sort incoming bytes into the file and the fields."""

    def __init__(self, file_field: str) -> None:
        self.file_field = file_field
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.current: str | None = None
        self.current_is_file = False
        self.file_seen = False
        self.filename: str | None = None
        self.pending: list[bytes] = []
        self.fields: dict[str, bytearray] = {}
        self.ended = False

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.current = name
        self.current_is_file = name == self.file_field
        if self.current_is_file:
            if self.file_seen:
                raise ApiError(400, "one_file_per_request", "Send one image per request.")
            self.file_seen = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None
        else:
            self.fields.setdefault(name, bytearray())

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current_is_file:
            self.pending.append(data[start:end])
            return
        assert self.current is not None
        field = self.fields[self.current]
        field += data[start:end]
        if len(field) > MAX_FIELD_BYTES:
            raise ApiError(413, "field_too_large", f"The form field {self.current!r} is too long.")

    def on_part_end(self) -> None:
        self.current = None
        self.current_is_file = False

    def on_end(self) -> None:
        self.ended = True


async def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


async def receive_upload(
    request: Request,
    destination: Path,
    *,
    max_bytes: int,
    file_field: str = "file",
    spool_bytes: int = SPOOL_BYTES,
    idle_timeout: float | None = None,
    min_free_bytes: int | None = None,
) -> ReceivedUpload:
    """Receive a multipart request's ``file_field`` part: in memory up to ``spool_bytes``,
    streamed to ``destination`` beyond that.

    :param request: a ``multipart/form-data`` request.
    :param destination: a path that does not exist yet, written only for a file larger than
        ``spool_bytes``; removed again on any error.
    :param max_bytes: largest accepted file, in bytes.
    :param spool_bytes: largest file kept in memory, and the smallest disk write, in bytes.
    :param idle_timeout: longest wait for the next chunk of the body, in seconds (None: none).
    :param min_free_bytes: free space ``destination``'s disk must keep after the upload, in
        bytes, checked before the body is read and before each write (None: not checked).
    :returns: the received file and the other fields.
    :raises ApiError: 415 not multipart, 400 malformed or no file part, 413 over the limit,
        408 ``upload_timeout`` (idle too long), 507 ``insufficient_storage`` (free space
        under the floor, or the disk full while writing).
    :raises starlette.requests.ClientDisconnect: the client went away (destination removed).
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise ApiError(
            415, "multipart_required", "Upload the image as multipart/form-data, field 'file'."
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise too_large(max_bytes)
    if min_free_bytes is not None:
        incoming = int(declared) if declared is not None and declared.isdigit() else 0
        await require_free_space(destination.parent, incoming, min_free_bytes)

    collector = _PartCollector(file_field)
    parser = MultipartParser(
        options[b"boundary"],
        callbacks={
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_end": collector.on_end,
        },
    )
    digest = hashlib.sha256()
    size = 0
    buffered: list[bytes] = []
    buffered_size = 0
    out: Any = None
    try:
        async for chunk in _chunks(request, idle_timeout):
            try:
                parser.write(chunk)
            except ApiError:
                raise
            except Exception as exc:  # python-multipart raises several parse error types
                raise ApiError(400, "malformed_multipart", f"Malformed upload: {exc}") from exc
            if collector.pending:
                for piece in collector.pending:
                    size += len(piece)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    digest.update(piece)
                    buffered.append(piece)
                    buffered_size += len(piece)
                collector.pending.clear()
                if buffered_size > spool_bytes:
                    if min_free_bytes is not None:
                        await require_free_space(destination.parent, buffered_size, min_free_bytes)
                    if out is None:
                        out = await aiofiles.open(destination, "wb")
                    await _write(out, b"".join(buffered))
                    buffered.clear()
                    buffered_size = 0
        parser.finalize()
        if not collector.ended:  # finalize() does not check it (python-multipart 0.0.x)
            raise ApiError(
                400,
                "malformed_multipart",
                "Malformed upload: the body ends before its closing "
                "boundary (it may have been cut off).",
            )
        if out is not None:
            if buffered:
                await _write(out, b"".join(buffered))
            await out.close()
            out = None
    except BaseException:  # ApiError, ClientDisconnect, OSError, cancellation
        if out is not None:
            await out.close()
            await _remove(destination)
        raise
    spilled = size > spool_bytes
    if not collector.file_seen:
        if spilled:
            await _remove(destination)
        raise ApiError(400, "file_missing", "The upload has no 'file' field.")
    # Bytes that are not UTF-8 become lone surrogates, which the field checks refuse (422).
    fields = {
        name: bytes(value).decode("utf-8", "surrogateescape")
        for name, value in collector.fields.items()
    }
    return ReceivedUpload(
        path=destination if spilled else None,
        body=None if spilled else b"".join(buffered),
        size=size,
        sha256=digest.hexdigest(),
        filename=collector.filename,
        fields=fields,
    )


def upload_timeout(seconds: float) -> ApiError:
    """The 408 error for a body that paused longer than ``seconds``; the connection is closed
    after it (the rest of the body is not worth waiting for)."""
    return ApiError(
        408,
        "upload_timeout",
        f"The upload stalled: no data for {seconds:g} seconds. Please try again.",
        {"Connection": "close"},
    )


def insufficient_storage() -> ApiError:
    """The 507 error for an upload the server has no disk space left for."""
    return ApiError(
        507,
        "insufficient_storage",
        "The server is out of storage space for photos; please try again later.",
        {"Retry-After": "300"},
    )


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""``OSError.errno`` values that mean the disk (or the user's quota on it) is full."""


async def require_free_space(folder: Path, incoming: int, floor: int) -> None:
    """Raise :func:`insufficient_storage` unless ``folder``'s disk keeps at least ``floor``
    bytes free after ``incoming`` more bytes (the statvfs runs in a thread).

    :param folder: an existing folder on the disk to check.
    :param incoming: bytes about to be written, in bytes.
    :param floor: free space to keep, in bytes.
    """
    usage = await to_thread.run_sync(shutil.disk_usage, folder)
    if usage.free - incoming < floor:
        raise insufficient_storage()


async def _write(out: Any, data: bytes) -> None:
    """Write to a spill file; a full disk becomes 507, not a 500."""
    try:
        await out.write(data)
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise insufficient_storage() from exc
        raise


async def _chunks(request: Request, idle_timeout: float | None) -> AsyncIterator[bytes]:
    """The request body's chunks, each awaited at most ``idle_timeout`` seconds.

    :raises ApiError: 408 ``upload_timeout`` when a chunk takes longer.
    """
    stream = request.stream()
    while True:
        try:
            with anyio.fail_after(idle_timeout):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            assert idle_timeout is not None
            raise upload_timeout(idle_timeout) from None
        yield chunk
