"""The object store itself: building obstore's store from the settings, and what every use of
it shares: the mapping of its failures to ``503 busy``, a streaming reader, file chunks for
PUTs. :mod:`web.object_media` builds the image files' layout on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
"""Retries of one request after a connection error, a timeout of a read, or a 5xx; the first
waits ``settings.storage_retry_wait_seconds``."""
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
    credentials) obstore reads from its standard environment variables. Azure: the account's
    name, key and blob endpoint (an emulator's, ``http://`` allowed) from the settings'
    ``AZURE_STORAGE_*`` fields; unset, obstore reads its own variables (a managed identity,
    ``AZURE_STORAGE_USE_EMULATOR``...). GCS is configured by its standard variables only
    (``GOOGLE_SERVICE_ACCOUNT``/``GOOGLE_APPLICATION_CREDENTIALS``), read by obstore when the
    store is built.

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
        # obstore's exponential backoff with jitter (its default first wait is 0.1 s).
        "backoff": {"init_backoff": timedelta(seconds=settings.storage_retry_wait_seconds)},
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
        azure: dict[str, Any] = {}
        if settings.azure_storage_account_name is not None:
            azure["account_name"] = settings.azure_storage_account_name
        if settings.azure_storage_account_key is not None:
            azure["account_key"] = settings.azure_storage_account_key.get_secret_value()
        if settings.azure_storage_endpoint is not None:
            azure["endpoint"] = settings.azure_storage_endpoint
            client["allow_http"] = settings.azure_storage_endpoint.startswith("http://")
        return AzureStore(
            location.bucket,
            prefix=prefix,
            config=azure,  # type: ignore[arg-type]
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


class S3Signer:
    """What obstore cannot sign for an S3 bucket, by one botocore client built with the
    credentials, region and endpoint the obstore :class:`S3Store` was built from
    (docs/decisions/0023-object-storage-library.md): presigned POST policies (HTML-form
    uploads, ``generate_presigned_post``) and presigned GETs that set the answer's
    ``Content-Disposition`` and ``Content-Type`` (``generate_presigned_url``; obstore's
    ``sign`` takes no query parameters). Signing is a local HMAC computation (no request);
    building the botocore client reads botocore's bundled service models from disk, so
    :meth:`open` runs it in a thread once.

    :param store: the obstore S3 store (its ``config``: bucket, region, endpoint, key pair;
        what it leaves unset, botocore reads from its standard credential chain, as obstore).
    """

    def __init__(self, store: S3Store) -> None:
        self._config: dict[str, Any] = dict(store.config)
        self._prefix = str(store.prefix) if store.prefix else ""
        self._client: Any = None
        self._has_credentials = False

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return str(self._config["bucket"])

    async def open(self) -> None:
        """Build the botocore client (in a thread: it reads JSON models from disk)."""
        if self._client is None:
            self._client = await asyncio.to_thread(self._build)

    def _build(self) -> Any:
        import botocore.session
        from botocore.config import Config

        endpoint = self._config.get("endpoint")
        virtual = str(self._config.get("virtual_hosted_style_request", "")).lower() == "true"
        style = "virtual" if endpoint is None or virtual else "path"
        session = botocore.session.get_session()
        client = session.create_client(
            "s3",
            region_name=str(self._config.get("region") or "us-east-1"),
            endpoint_url=endpoint,
            aws_access_key_id=self._config.get("access_key_id"),
            aws_secret_access_key=self._config.get("secret_access_key"),
            aws_session_token=self._config.get("token") or self._config.get("session_token"),
            config=Config(signature_version="s3v4", s3={"addressing_style": style}),
        )
        key_id = self._config.get("access_key_id")
        self._has_credentials = key_id is not None or session.get_credentials() is not None
        return client

    async def sign_post(
        self, path: str, *, content_type: str, max_bytes: int, expires_seconds: int
    ) -> tuple[str, dict[str, str]]:
        """A POST policy for exactly one object (a coroutine). The HMAC takes about 0.12 ms
        with a static key pair, but botocore refreshes expiring credentials (web identity,
        instance roles) inside the call with a blocking request, so it runs in a thread.

        :param path: the object's path under the store's prefix (the prefix is added).
        :param content_type: the only ``Content-Type`` the policy accepts (and the one the
            object is stored with: it is one of the returned fields).
        :param max_bytes: the largest body accepted (``content-length-range`` 1..max_bytes,
            bytes).
        :param expires_seconds: the policy's lifetime, seconds.
        :returns: (the form's URL, its fields in order; the file goes last as ``file``).
        :raises RuntimeError: :meth:`open` was not awaited.
        :raises StoreUnavailable: botocore found no credentials to sign with.
        """
        if self._client is None:
            raise RuntimeError("S3Signer.open() first")
        if not self._has_credentials:
            logger.warning("object store sign failed: no credentials for a POST policy")
            raise StoreUnavailable()
        from botocore.exceptions import BotoCoreError

        key = f"{self._prefix}/{path}" if self._prefix else path
        try:
            post = await asyncio.to_thread(
                self._client.generate_presigned_post,
                self.bucket,
                key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    ["content-length-range", 1, max_bytes],
                    {"Content-Type": content_type},
                ],
                ExpiresIn=expires_seconds,
            )
        except BotoCoreError as exc:
            logger.warning("object store sign failed: %s", exc)
            raise StoreUnavailable() from exc
        return str(post["url"]), {str(name): str(value) for name, value in post["fields"].items()}

    async def sign_get(
        self, path: str, *, content_disposition: str, content_type: str, expires_seconds: int
    ) -> str:
        """A presigned GET of one object whose answer carries ``content_disposition`` and
        ``content_type`` instead of the stored ones: S3's ``response-content-disposition``
        and ``response-content-type`` query parameters, covered by the signature (a
        coroutine; in a thread, as :meth:`sign_post`).

        :param path: the object's path under the store's prefix (the prefix is added).
        :param content_disposition: the header's value, ASCII (e.g. RFC 6266 ``attachment;
            filename="..."; filename*=UTF-8''...``).
        :param content_type: the MIME type the answer is sent as.
        :param expires_seconds: the URL's lifetime, seconds.
        :returns: the URL.
        :raises RuntimeError: :meth:`open` was not awaited.
        :raises StoreUnavailable: botocore found no credentials to sign with.
        """
        if self._client is None:
            raise RuntimeError("S3Signer.open() first")
        if not self._has_credentials:
            logger.warning("object store sign failed: no credentials for a GET")
            raise StoreUnavailable()
        from botocore.exceptions import BotoCoreError

        params = {
            "Bucket": self.bucket,
            "Key": f"{self._prefix}/{path}" if self._prefix else path,
            "ResponseContentDisposition": content_disposition,
            "ResponseContentType": content_type,
        }
        try:
            url = await asyncio.to_thread(
                self._client.generate_presigned_url,
                "get_object",
                Params=params,
                ExpiresIn=expires_seconds,
            )
        except BotoCoreError as exc:
            logger.warning("object store sign failed: %s", exc)
            raise StoreUnavailable() from exc
        return str(url)


def browser_origins(store: ObjectStore) -> tuple[str, ...]:
    """The origins a browser reaches ``store`` at: where a direct upload's form or PUT goes
    and where presigned GET redirects point, for the pages' Content-Security-Policy
    (``connect-src``, ``img-src``). Derived from the store's configuration, never a wildcard.

    - S3 with an endpoint (S3-compatible stores, moto): the endpoint's origin (path-style
      URLs, as the store and :class:`S3Signer` build them).
    - AWS S3: the bucket's virtual host (the POST form, ``<bucket>.s3[.<region>].amazonaws.com``)
      and the regional endpoint (presigned GETs, path-style).
    - GCS: ``https://storage.googleapis.com``; Azure: the endpoint's origin when one is set (an
      emulator), else ``https://<account>.blob.core.windows.net`` (nothing when the account
      is not in the store's configuration).

    :returns: origins such as ``"http://127.0.0.1:9000"``, without a trailing slash.
    """
    config: dict[str, Any] = dict(store.config)
    if isinstance(store, S3Store):
        endpoint = config.get("endpoint")
        if endpoint:
            parts = urlsplit(str(endpoint))
            return (f"{parts.scheme}://{parts.netloc}",)
        bucket, region = config["bucket"], config.get("region") or "us-east-1"
        return (
            f"https://{bucket}.s3.amazonaws.com",
            f"https://{bucket}.s3.{region}.amazonaws.com",
            f"https://s3.{region}.amazonaws.com",
        )
    if isinstance(store, GCSStore):
        return ("https://storage.googleapis.com",)
    endpoint = config.get("endpoint")
    if endpoint:
        parts = urlsplit(str(endpoint))
        return (f"{parts.scheme}://{parts.netloc}",)
    account = config.get("account_name")
    return (f"https://{account}.blob.core.windows.net",) if account else ()
