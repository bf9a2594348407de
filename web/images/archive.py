"""The host's ZIP archive of a room: every approved original as stored (the file the guest's
browser sent, its GPS tags blanked at upload unless the room keeps locations:
``web.pipeline.location``), and an index (its ``sha256`` is of the file as received).

The archive is produced while it is sent (``stream_zip.async_stream_zip``), so neither memory
nor disk ever holds it whole, and neither holds a whole photo: originals are read in chunks.
Entries are stored, not compressed (photos do not compress), with ZIP64 headers so that rooms
over 4 GiB work. A stored entry's header carries its CRC-32 and size before its data, so each
original is read twice: once for the CRC (from its already opened file) and once to send it;
the second read usually comes from the page cache.

Layout::

    originals/<id>-<uploader or "guest">.<ext>
    index.csv      id, file, uploader, caption, uploaded_at, width, height, sha256

Images deleted while the archive is produced are left out (and out of the index) if their file
was not opened yet; an opened file is read to the end, as POSIX keeps a deleted file's data
until it is closed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import stat
import unicodedata
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from stream_zip import NO_COMPRESSION_64, AsyncMemberFile, async_stream_zip

from web.images.repository import Image, ImageRepository
from web.media import MediaReader, MediaStore

PAGE_SIZE = 200
# Chunks large enough that the two thread hand-offs per chunk do not cap the throughput
# (docs/decisions/0014-archive-chunk-sizes.md).
READ_CHUNK_BYTES = 1024 * 1024
ZIP_CHUNK_BYTES = 256 * 1024
INDEX_NAME = "index.csv"
INDEX_COLUMNS = ("id", "file", "uploader", "caption", "uploaded_at", "width", "height", "sha256")
FILE_MODE = stat.S_IFREG | 0o644
MAX_NAME_PART_CHARS = 80

# File extension of an original, by the MIME type the pipeline sniffed from its bytes.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/heic-sequence": "heics",
    "image/heif-sequence": "heifs",
    "image/avif": "avif",
}
# Characters no file name should hold on any common system (Windows forbids these; "/" and
# "\\" would make folders), replaced by "_".
_FORBIDDEN_IN_NAMES = frozenset('/\\:*?"<>|')
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection, OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def file_name_part(text: str, *, fallback: str, max_chars: int = MAX_NAME_PART_CHARS) -> str:
    """``text`` made safe as part of a file name on any system; keeps non-ASCII letters.

    Control and invisible formatting characters (e.g. right-to-left overrides that disguise an
    extension) are dropped, path separators and Windows' reserved characters become ``_``,
    runs of whitespace become one space, leading and trailing dots and spaces go.

    :param text: e.g. a room title or an uploader's display name.
    :param fallback: returned when nothing usable is left (e.g. ``".."``).
    :param max_chars: longest result, in characters.
    :returns: a non-empty string without ``/``, ``\\`` or control characters.
    """
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        if char in _FORBIDDEN_IN_NAMES:
            kept.append("_")
        elif category.startswith("Z"):
            kept.append(" ")
        else:
            kept.append(char)
    cleaned = " ".join("".join(kept).split()).strip(" .")
    return cleaned[:max_chars].rstrip(" .") or fallback


def original_extension(mime_type: str) -> str:
    """File extension (no dot) for an original of ``mime_type``; ``"bin"`` if unknown."""
    return EXTENSIONS.get(mime_type, "bin")


def original_member_name(image: Image) -> str:
    """The archive path of ``image``'s original: ``originals/<id>-<uploader>.<ext>``."""
    uploader = file_name_part(image.uploader_name or "", fallback="guest")
    return f"originals/{image.id}-{uploader}.{original_extension(image.mime_type)}"


def _spreadsheet_safe(text: str | None) -> str:
    if text is None:
        return ""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


@dataclass
class _Index:
    """index.csv, built up as originals are added (one small row per image)."""

    text: io.StringIO

    @classmethod
    def start(cls) -> _Index:
        index = cls(io.StringIO())
        csv.writer(index.text).writerow(INDEX_COLUMNS)
        return index

    def add(self, image: Image, member_name: str) -> None:
        csv.writer(self.text).writerow(
            (
                image.id,
                member_name,
                _spreadsheet_safe(image.uploader_name),
                _spreadsheet_safe(image.caption),
                image.created_at.isoformat(),
                image.original_width,
                image.original_height,
                image.sha256,
            )
        )

    def encoded(self) -> bytes:
        # UTF-8 with a byte-order mark: spreadsheet programs otherwise guess a legacy
        # encoding and garble non-ASCII names and captions.
        return "\ufeff".encode() + self.text.getvalue().encode()


async def _crc32_and_size(handle: MediaReader) -> tuple[int, int]:
    crc, size = 0, 0
    while chunk := await handle.read(READ_CHUNK_BYTES):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    await handle.seek(0)
    return crc, size


async def _chunks(handle: MediaReader) -> AsyncIterator[bytes]:
    while chunk := await handle.read(READ_CHUNK_BYTES):
        yield chunk


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _members(
    room_id: int,
    repository: ImageRepository,
    media: MediaStore,
    reader: ThreadPoolExecutor,
) -> AsyncGenerator[AsyncMemberFile, None]:
    """The archive's entries in id order, then index.csv; each original is open only while
    stream_zip reads it (it asks for the next entry once the previous one is consumed)."""
    index = _Index.start()
    after = 0
    while True:
        page = await repository.page(room_id, after, PAGE_SIZE)
        for image in page:
            handle = await media.open_original(image.storage_key, reader)
            if handle is None:
                continue  # deleted since the page was read
            try:
                crc, size = await _crc32_and_size(handle)
                name = original_member_name(image)
                index.add(image, name)
                yield (
                    name,
                    image.created_at,
                    FILE_MODE,
                    NO_COMPRESSION_64(size, crc),
                    _chunks(handle),
                )
            finally:
                await handle.close()
        if len(page) < PAGE_SIZE:
            break
        after = page[-1].id
    data = index.encoded()
    yield (
        INDEX_NAME,
        datetime.now(UTC),
        FILE_MODE,
        NO_COMPRESSION_64(len(data), zlib.crc32(data)),
        _one_chunk(data),
    )


async def room_archive(
    room_id: int, repository: ImageRepository, media: MediaStore
) -> AsyncIterator[bytes]:
    """The ZIP archive of a room's approved originals and index.csv, as it is produced.

    An async generator of chunks (up to 256 KiB each) for a ``StreamingResponse``; memory use
    is a few MiB whatever the room's size.

    :param room_id: the room whose approved images are archived, in upload (id) order.
    :param repository: where the images are listed, 200 at a time.
    :param media: where their originals are read.
    :raises sqlalchemy.exc.DBAPIError: the database failed while listing (the archive is then
        cut short; the client sees a truncated download).
    """
    # async_stream_zip runs the ZIP encoder in the event loop's default executor and blocks
    # those threads while it waits for our chunks. Were the files read through that same
    # executor (aiofiles' default), enough concurrent archives would hold every thread
    # waiting for a read that needs a thread: a deadlock. So each archive reads through a
    # thread of its own.
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-reader")
    members = _members(room_id, repository, media, reader)
    try:
        async for chunk in async_stream_zip(members, chunk_size=ZIP_CHUNK_BYTES):
            yield chunk
    finally:
        # Closes the open original if the client went away mid-entry; the generator may still
        # be running in the encoder's thread if the response was cancelled at that moment,
        # in which case it is closed when collected.
        with contextlib.suppress(RuntimeError):
            await members.aclose()
        reader.shutdown(wait=False)
