"""The object store itself: building obstore's store from the settings, and what every use of
it shares: the mapping of its failures to ``503 busy``, a streaming reader, file chunks for
PUTs. :mod:`web.object_media` builds the image files' layout on it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiofiles
import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import AzureStore, GCSStore, S3Store

from web.errors import ApiError
from web.settings import Settings, StorageLocation

logger = logging.getLogger(__name__)

ObjectStore = S3Store | GCSStore | AzureStore
"""The stores obstore can sign URLs for, the three this service takes."""

RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of :class:`StoreUnavailable`, seconds (as ``database_unavailable``)."""
RETRIES = 2
"""Retries of one request after a connection error, a timeout of a read, or a 5xx."""
RETRY_SECONDS = 5.0
"""Longest time obstore keeps retrying one request, seconds: an upload waits at most about this
(plus :data:`CONNECT_TIMEOUT`) for a store that is down before it gets 503."""
CONNECT_TIMEOUT = "3s"
"""Longest wait for a connection to the store, obstore duration syntax."""
REQUEST_TIMEOUT = "60s"
"""Longest one request may take (a 40 MiB original at 6 Mbit/s), obstore duration syntax."""
READ_CHUNK_BYTES = 256 * 1024
"""Least piece a streamed GET yields, bytes."""
PUT_CHUNK_BYTES = 8 * 1024 * 1024
"""Part size of multipart PUTs, bytes (S3's least is 5 MiB); a smaller file is one PUT."""


class StoreUnavailable(ApiError):
    """503 ``busy`` with ``Retry-After``: the object store did not answer (or answered 5xx)
    after its retries. Nothing was stored; the client should retry shortly."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "busy",
            "The image store is not reachable right now; nothing was stored. Please retry.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


@contextlib.contextmanager
def reaching_store(action: str) -> Iterator[None]:
    """A context in which obstore's errors other than "not found" become
    :class:`StoreUnavailable` (logged once, first line only: the rest is a Rust debug dump).

    :param action: what was being done, for the log (``"put"``, ``"list"``...).
    """
    try:
        yield
    except (FileNotFoundError, NotFoundError):
        raise
    except BaseError as exc:
        logger.warning("object store %s failed: %s", action, str(exc).partition("\n")[0])
        raise StoreUnavailable() from exc


def open_object_store(settings: Settings) -> ObjectStore:
    """The obstore store of ``settings.storage`` (an ``s3``, ``gs`` or ``az`` location).

    S3: the bucket's region, endpoint and key pair come from the settings' ``AWS_*`` fields;
    what they leave unset (a session token, an IAM role for service accounts, instance
    credentials) obstore reads from its standard environment variables. GCS and Azure are
    configured by their standard variables only (``GOOGLE_SERVICE_ACCOUNT``/
    ``GOOGLE_APPLICATION_CREDENTIALS``; ``AZURE_STORAGE_ACCOUNT_NAME``,
    ``AZURE_STORAGE_ACCOUNT_KEY`` or a managed identity, ``AZURE_STORAGE_USE_EMULATOR``),
    read by obstore when the store is built.

    :raises ValueError: the settings name a local folder, or obstore refuses the
        configuration (e.g. a key id without its secret); the message says which.
    """
    location: StorageLocation = settings.storage
    try:
        return _open(location, settings)
    except BaseError as exc:
        raise ValueError(f"{location.url}: {str(exc).partition(chr(10))[0]}") from exc


def _open(location: StorageLocation, settings: Settings) -> ObjectStore:
    client: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "timeout": REQUEST_TIMEOUT}
    retry: dict[str, Any] = {
        "max_retries": RETRIES,
        "retry_timeout": timedelta(seconds=RETRY_SECONDS),
    }
    prefix = location.prefix or None
    if location.scheme == "s3":
        config: dict[str, Any] = {"region": settings.aws_region or "us-east-1"}
        if settings.aws_access_key_id is not None:
            config["access_key_id"] = settings.aws_access_key_id.get_secret_value()
        if settings.aws_secret_access_key is not None:
            config["secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
        if settings.aws_endpoint_url is not None:
            config["endpoint"] = settings.aws_endpoint_url
            client["allow_http"] = settings.aws_endpoint_url.startswith("http://")
        return S3Store(
            location.bucket,
            prefix=prefix,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
        )
    if location.scheme == "gs":
        return GCSStore(
            location.bucket,
            prefix=prefix,
            client_options=client,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
        )
    if location.scheme == "az":
        return AzureStore(
            location.bucket,
            prefix=prefix,
            client_options=client,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
        )
    raise ValueError(f"not an object store: {location.scheme}")


class ObjectReader:
    """:class:`~web.media.MediaReader` over one object's GET stream (a GET already answered:
    ``result``). ``seek(0)`` starts a second GET bound to the first one's ETag, so an object
    replaced or deleted in between fails the read (FileNotFoundError, or
    :class:`StoreUnavailable` for a changed ETag) instead of mixing two files."""

    def __init__(self, store: ObjectStore, path: str, result: obstore.GetResult) -> None:
        self._store = store
        self._path = path
        self._etag = result.meta.get("e_tag")
        self._stream: AsyncIterator[Any] | None = aiter(
            result.stream(min_chunk_size=READ_CHUNK_BYTES)
        )
        self._buffer = b""
        self._position = 0

    async def read(self, size: int = -1, /) -> bytes:
        while self._stream is not None and (size < 0 or len(self._buffer) < size):
            try:
                with reaching_store("get"):
                    chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._stream = None
                break
            self._buffer += bytes(chunk)
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        self._position += len(data)
        return data

    async def seek(self, offset: int, whence: int = 0, /) -> int:
        if offset != 0 or whence != 0:
            raise ValueError("an object reader only seeks back to the start")
        options: dict[str, Any] = {"if_match": self._etag} if self._etag else {}
        with reaching_store("get"):
            result = await obstore.get_async(self._store, self._path, options=options)  # type: ignore[arg-type]
        self._stream = aiter(result.stream(min_chunk_size=READ_CHUNK_BYTES))
        self._buffer = b""
        self._position = 0
        return 0

    async def close(self) -> None:
        self._stream = None
        self._buffer = b""


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A local file's bytes in :data:`PUT_CHUNK_BYTES` pieces, read through aiofiles (what a
    PUT streams; obstore writes an iterable longer than one part as a multipart upload)."""
    async with aiofiles.open(path, "rb") as handle:
        while chunk := await handle.read(PUT_CHUNK_BYTES):
            yield chunk
