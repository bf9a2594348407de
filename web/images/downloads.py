"""HTTP routes for taking photos home: the full-resolution JPEG, the host's original and ZIP
archive, and presigned links to these downloads.

- ``GET .../images/{id}/download``: the photo at full resolution, upright, sRGB, without
  metadata, made by the rendition pool on first request and kept with the image's files
  (:meth:`web.media.MediaStore.full_size`); for anyone who may see the image, or by a
  presigned link.
- ``GET .../images/{id}/original`` and ``GET .../archive.zip``: host only, by the host key or by
  a presigned link.
- ``POST .../links``: the host asks for a presigned link (10 minutes) so that a browser can
  download straight to disk without an ``Authorization`` header (which a plain link cannot
  send; in a room with a passcode the host's browser has no participant cookie either).

Links are ``<path>?signature=<timestamp>.<mac>``: an itsdangerous ``TimestampSigner`` signature
of exactly that path, with the service's signing key and the salt ``download-link``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from web.errors import ApiError
from web.images.archive import file_name_part, original_extension
from web.images.endpoints import media_response
from web.images.repository import APPROVED, Image
from web.images.service import image_not_found
from web.rooms.endpoints import json_body, require_host, room_for, viewer_of
from web.rooms.repository import Room
from web.rooms.schemas import LinkRequest, SignedLink, invalid_link_path
from web.rooms.service import Viewer
from web.services import services
from web.wire import Answer, Binary, Operation, Parameter, json_answer, parse_body

LINK_SALT = "download-link"
LINK_SECONDS = 600
SIGNATURE_PARAM = "signature"
_MAX_SIGNATURE_CHARS = 128
PRIVATE = "private, no-store"
_ASCII_NAME_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


# --- presigned links -----------------------------------------------------------------------


class _FixedClockSigner(TimestampSigner):
    """A TimestampSigner whose "now" is given, so links follow the service's clock."""

    def __init__(self, key: bytes, now: int) -> None:
        super().__init__(key, salt=LINK_SALT)
        self._now = now

    def get_timestamp(self) -> int:
        return self._now


class DownloadLinks:
    """Signs and checks presigned download links.

    :param key: the service's signing key (the same on every replica).
    :param clock: the current UTC time.
    """

    def __init__(self, key: bytes, clock: Callable[[], datetime]) -> None:
        self.key = key
        self.clock = clock

    def sign(self, path: str) -> tuple[str, datetime]:
        """A link to ``path`` valid for 10 minutes from now.

        :param path: an absolute path without query, e.g. ``/api/rooms/<token>/archive.zip``.
        :returns: ``(url, expires_at)``: the path with its ``signature`` query parameter, and
            the last moment it is accepted (UTC, whole seconds).
        """
        now = int(self.clock().timestamp())
        signed = _FixedClockSigner(self.key, now).sign(path).decode()
        signature = signed[len(path) + 1 :]
        expires_at = datetime.fromtimestamp(now + LINK_SECONDS, UTC)
        return f"{path}?{SIGNATURE_PARAM}={signature}", expires_at

    def verify(self, path: str, signature: str) -> None:
        """Accept ``signature`` for ``path`` if this service made it under 10 minutes ago.

        :raises ApiError: 403 ``invalid_link`` for a signature that is malformed, made for
            another path or with another key, or expired (the message says which).
        """
        signer = _FixedClockSigner(self.key, int(self.clock().timestamp()))
        try:
            if len(signature) > _MAX_SIGNATURE_CHARS:
                raise BadSignature("too long")
            signer.unsign(f"{path}.{signature}", max_age=LINK_SECONDS)
        except SignatureExpired as exc:
            expired = exc.date_signed + timedelta(seconds=LINK_SECONDS) if exc.date_signed else None
            when = f" at {expired.isoformat()}" if expired else ""
            raise ApiError(
                403,
                "invalid_link",
                f"This download link expired{when}; ask the host for a new one.",
            ) from None
        except BadSignature:
            raise ApiError(
                403, "invalid_link", "This download link is not valid for this download."
            ) from None


def _links(request: Request) -> DownloadLinks:
    app = services(request)
    return DownloadLinks(app.signing_key, app.rooms.clock)


async def _require_host_or_link(request: Request, room: Room, path: str) -> None:
    """Allow the owner (host key or the owner's session) or a valid presigned link for
    ``path``.

    :raises ApiError: 401/403 from the host check without a signature; 403 ``invalid_link``
        for a bad or expired signature.
    """
    signature = request.query_params.get(SIGNATURE_PARAM)
    if signature is not None:
        _links(request).verify(path, signature)
        return
    await require_host(request, room, "own")


def archive_path(room: Room) -> str:
    """The path of ``room``'s ZIP archive."""
    return f"/api/rooms/{room.token}/archive.zip"


def original_path(room: Room, image_id: int | str) -> str:
    """The path of an image's original download."""
    return f"/api/rooms/{room.token}/images/{image_id}/original"


def full_path(room: Room, image_id: int | str) -> str:
    """The path of an image's full-resolution JPEG download."""
    return f"/api/rooms/{room.token}/images/{image_id}/download"


def _is_linkable(room: Room, path: str) -> bool:
    if path == archive_path(room):
        return True
    prefix = f"/api/rooms/{room.token}/images/"
    if not path.startswith(prefix):
        return False
    image_id = path[len(prefix) :].partition("/")[0]
    if not (image_id.isascii() and image_id.isdigit() and len(image_id) < 19):
        return False
    return path in (original_path(room, image_id), full_path(room, image_id))


async def create_link(request: Request) -> Response:
    room = await room_for(request)
    await require_host(request, room, "own")
    path = parse_body(LinkRequest, await json_body(request)).path
    if not _is_linkable(room, path):
        raise invalid_link_path()
    url, expires_at = _links(request).sign(path)
    return json_answer(
        SignedLink(url=url, expires_at=expires_at.isoformat()),
        headers={"Cache-Control": PRIVATE},
    )


# --- file names ------------------------------------------------------------------------------


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value offering ``filename`` for saving (RFC 6266).

    ``filename`` must already be safe (see :func:`file_name_part`: no quotes, backslashes or
    control characters). A non-ASCII name is sent as ``filename*`` (RFC 8187, UTF-8), after
    an ASCII approximation in ``filename`` for clients that do not read ``filename*``.
    """
    if filename.isascii():
        return f'attachment; filename="{filename}"'
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = _ASCII_NAME_UNSAFE.sub("_", ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _title_part(room: Room) -> str:
    return file_name_part(room.title, fallback="photos")


# --- handlers --------------------------------------------------------------------------------


def _may_see(viewer: Viewer, image: Image) -> bool:
    if image.status == APPROVED or viewer.is_host:
        return True
    return viewer.participant is not None and viewer.participant.id == image.participant_id


async def _full_viewer(request: Request, room: Room, image_id: str) -> Viewer:
    """Who may download an image at full resolution: with a ``signature``, a presigned link for
    exactly this path (made by the host, so it sees what the host sees, pending images too);
    without, the host, a participant, or anyone in an open room.

    :raises ApiError: 403 ``invalid_link`` for a bad or expired signature; 401
        ``passcode_required`` without one, in a room with a passcode, for a stranger.
    """
    signature = request.query_params.get(SIGNATURE_PARAM)
    if signature is not None:
        _links(request).verify(full_path(room, image_id), signature)
        return Viewer(participant=None, is_host=True)
    return await viewer_of(request, room)


async def download_full(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    image_id = request.path_params["image_id"]
    viewer = await _full_viewer(request, room, image_id)
    image = await app.images.get(room, image_id)
    if not _may_see(viewer, image):
        raise image_not_found()  # a pending image is not there for other guests
    disposition = attachment(f"{_title_part(room)}-{image.id}.jpg")
    # The store's redirect carries the name too where it can sign it (S3; docs/API.md).
    full = await app.images.full_size(image, disposition=disposition)
    if full is None:
        raise image_not_found()  # deleted meanwhile
    return media_response(full, {"Content-Disposition": disposition, "Cache-Control": PRIVATE})


async def download_original(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    image_id = request.path_params["image_id"]
    await _require_host_or_link(request, room, original_path(room, image_id))
    image = await app.images.get(room, image_id)
    name = f"{_title_part(room)}-{image.id}.{original_extension(image.mime_type)}"
    disposition = attachment(name)
    original = await app.images.original(image, disposition=disposition)
    if original is None:
        raise ApiError(404, "not_found", "The original file is missing.")
    return media_response(original, {"Content-Disposition": disposition, "Cache-Control": PRIVATE})


async def download_archive(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await _require_host_or_link(request, room, archive_path(room))
    return StreamingResponse(
        app.images.archive(room),
        media_type="application/zip",
        headers={
            "Content-Disposition": attachment(f"{_title_part(room)}.zip"),
            "Cache-Control": PRIVATE,
        },
    )


_SIGNATURE = Parameter(
    SIGNATURE_PARAM,
    "query",
    "A presigned link's signature (`POST .../links`), instead of other credentials.",
    {"type": "string", "maxLength": _MAX_SIGNATURE_CHARS},
)
_ATTACHMENT = {"Content-Disposition": '`attachment; filename="<room title>-<id>.<ext>"`'}
_STORE_REDIRECT = Answer(
    "With object storage: the file is at `Location`, a presigned GET valid for "
    "`IMAGESHARK_MEDIA_URL_SECONDS` that offers it as an attachment; not cached.",
    None,
    {"Location": "The presigned GET of the stored object."},
)
_HOST_OR_LINK = {
    401: ("host_key_required",),
    403: ("wrong_host_key", "forbidden", "invalid_link"),
}

operations = [
    Operation(
        "GET",
        "/api/rooms/{token}/images/{image_id}/download",
        download_full,
        "downloadImage",
        "Download an image at full resolution",
        "downloads",
        {
            200: Answer("Upright sRGB JPEG without metadata.", Binary("image/jpeg"), _ATTACHMENT),
            302: _STORE_REDIRECT,
        },
        {
            401: ("passcode_required",),
            403: ("invalid_link",),
            404: ("room_not_found", "image_not_found"),
            503: ("busy",),
        },
        parameters=(_SIGNATURE,),
        security=("anonymous", "hostKey", "sessionCookie", "participantKey", "participantCookie"),
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/images/{image_id}/original",
        download_original,
        "downloadOriginal",
        "Download an image's original file (host)",
        "downloads",
        {
            200: Answer("The file as stored.", Binary("image/*"), _ATTACHMENT),
            302: _STORE_REDIRECT,
        },
        {
            **_HOST_OR_LINK,
            404: ("room_not_found", "image_not_found", "not_found"),
            503: ("busy",),
        },
        parameters=(_SIGNATURE,),
        security=("hostKey", "sessionCookie", "anonymous"),
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/archive.zip",
        download_archive,
        "downloadArchive",
        "Download every approved original as a ZIP archive (host)",
        "downloads",
        {
            200: Answer(
                "Streamed ZIP: `originals/...` and `index.csv`.",
                Binary("application/zip"),
                {"Content-Disposition": '`attachment; filename="<room title>.zip"`'},
            )
        },
        {**_HOST_OR_LINK, 404: ("room_not_found",)},
        parameters=(_SIGNATURE,),
        security=("hostKey", "sessionCookie", "anonymous"),
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/links",
        create_link,
        "createLink",
        "Presign a download link (host)",
        "downloads",
        {200: Answer("A link valid for 10 minutes without other credentials.", SignedLink)},
        {
            401: ("host_key_required",),
            403: ("wrong_host_key", "forbidden"),
            404: ("room_not_found",),
            422: ("invalid_path", "unknown_field"),
        },
        body=LinkRequest,
        security=("hostKey", "sessionCookie"),
    ),
]
routes = [operation.route() for operation in operations]
