"""HTTP routes of images: upload, list, delete, original download, and rendition files."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from web.errors import ApiError
from web.images.repository import PENDING
from web.images.schemas import EventPage, ImageBody, ImagePage, UploadForm
from web.media import MediaFile, media_cache_control
from web.rooms.endpoints import (
    PARTICIPANT_HEADER,
    client_address,
    not_joined,
    require_host,
    room_for,
    viewer_of,
)
from web.services import services
from web.uploads import MultipartBody
from web.wire import Answer, Binary, Operation, Parameter, Security, json_answer

REDIRECT_MARGIN_SECONDS = 60
"""Taken off a redirect target's lifetime for its ``max-age``: clients' clocks drift."""
_MAX_AGE = re.compile(r"max-age=(\d+)")


def media_response(found: MediaFile, headers: dict[str, str]) -> Response:
    """The response sending ``found`` with ``headers``: a local file as a ``FileResponse``
    (``ETag``, ``Last-Modified``, ranges), bytes as they are, a URL as a ``302`` redirect to
    it (the object store serves the bytes) whose ``Cache-Control`` ``max-age`` is bounded by
    the URL's lifetime (less :data:`REDIRECT_MARGIN_SECONDS` for clock skew), and without
    ``Content-Disposition`` (the stored object carries its own)."""
    if found.path is not None:
        return FileResponse(found.path, media_type=found.content_type, headers=headers)
    if found.redirect is not None:
        redirect = {k: v for k, v in headers.items() if k.lower() != "content-disposition"}
        if found.redirect_seconds is not None and "Cache-Control" in redirect:
            lifetime = max(0, found.redirect_seconds - REDIRECT_MARGIN_SECONDS)
            redirect["Cache-Control"] = _MAX_AGE.sub(
                lambda match: f"max-age={min(int(match.group(1)), lifetime)}",
                redirect["Cache-Control"],
            )
        return RedirectResponse(found.redirect, status_code=302, headers=redirect)
    return Response(found.body, media_type=found.content_type, headers=headers)


async def upload_image(request: Request) -> Response:
    app = services(request)
    room = await app.rooms.get_for_upload(request.path_params["token"])
    viewer = await viewer_of(request, room)
    image, created = await app.images.upload(
        room, viewer, MultipartBody(request), client_address(request)
    )
    return json_answer(ImageBody.model_validate(image), status=201 if created else 200)


async def list_images(request: Request) -> Response:
    app = services(request)
    # Also during the read-only grace after expiry (``gallery_grace_days``).
    room = await app.rooms.get_gallery(request.path_params["token"])
    viewer = await viewer_of(request, room)
    mine = request.query_params.get("mine", "").lower() in ("1", "true", "yes")
    if mine and viewer.participant is None:
        raise not_joined()
    page = await app.images.page(
        room,
        request.query_params.get("after"),
        request.query_params.get("limit"),
        status=None if mine else "approved",
        participant_id=viewer.participant.id if mine and viewer.participant else None,
    )
    return json_answer(ImagePage.model_validate(page))


async def list_pending(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await require_host(request, room, "moderate")
    page = await app.images.page(
        room,
        request.query_params.get("after"),
        request.query_params.get("limit"),
        status=PENDING,
    )
    return json_answer(ImagePage.model_validate(page))


async def approve_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await require_host(request, room, "moderate")
    return json_answer(
        ImageBody.model_validate(await app.images.approve(room, request.path_params["image_id"]))
    )


async def reject_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await require_host(request, room, "moderate")
    await app.images.reject(room, request.path_params["image_id"])
    return Response(status_code=204)


async def list_events(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await viewer_of(request, room)
    page = await app.images.events(
        room, request.query_params.get("after"), request.query_params.get("limit")
    )
    return json_answer(EventPage.model_validate(page))


async def delete_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await app.images.delete(
        room,
        request.path_params["image_id"],
        viewer=await viewer_of(request, room),
        credentials=bool(
            request.headers.get("authorization")
            or request.headers.get(PARTICIPANT_HEADER)
            or request.cookies
        ),
    )
    return Response(status_code=204)


async def rendition_file(request: Request) -> Response:
    app = services(request)
    key, name = request.path_params["key"], request.path_params["name"]
    found = await app.images.rendition(key, name)
    if found is None:
        raise ApiError(404, "not_found", "No such image file.")
    headers = {"Cache-Control": media_cache_control(app.settings.media_max_age_seconds)}
    return media_response(found, headers)


def _page(after: str, default: int) -> tuple[Parameter, Parameter]:
    return (
        Parameter(
            "after",
            "query",
            f"Only items after this {after} (default: from the start).",
            {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        ),
        Parameter(
            "limit",
            "query",
            f"Page size (default {default}).",
            {"type": "integer", "minimum": 1, "maximum": 200},
        ),
    )


_LOCATION = {"Location": "Where the file is served (the object store, or the media base URL)."}
_VIEWERS: tuple[Security, ...] = (
    "anonymous",
    "hostKey",
    "sessionCookie",
    "participantKey",
    "participantCookie",
)
_PAGE_ERRORS = {422: ("invalid_after", "invalid_limit")}
_HOST_ONLY = {401: ("host_key_required",), 403: ("wrong_host_key", "forbidden")}

operations = [
    Operation(
        "POST",
        "/api/rooms/{token}/images",
        upload_image,
        "uploadImage",
        "Upload an image",
        "images",
        {
            201: Answer("Stored; `image_added` (or `moderation_queue`) is emitted.", ImageBody),
            200: Answer("The same bytes were already in the room: the stored image.", ImageBody),
        },
        {
            400: (
                "empty_file",
                "file_missing",
                "malformed_multipart",
                "one_file_per_request",
            ),
            401: ("passcode_required", "join_required"),
            404: ("room_not_found",),
            408: ("upload_timeout",),
            409: ("room_closed", "uploads_paused", "room_ended", "conflict"),
            413: ("file_too_large", "image_too_large", "field_too_large"),
            415: ("multipart_required", "unsupported_media_type"),
            422: ("corrupt_image", "invalid_caption", "image_too_costly"),
            429: ("rate_limited", "guest_quota_reached", "room_quota_reached", "room_storage_full"),
            503: ("busy",),
            507: ("insufficient_storage",),
        },
        form=UploadForm,
        security=_VIEWERS,
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/images",
        list_images,
        "listImages",
        "Page through a room's images",
        "images",
        {
            200: Answer(
                "Approved images in upload order (with `mine`: the caller's own).", ImagePage
            )
        },
        {401: ("passcode_required", "not_joined"), 404: ("room_not_found",), **_PAGE_ERRORS},
        parameters=(
            *_page("image id", 50),
            Parameter(
                "mine",
                "query",
                "`true`, `1` or `yes` (any case): only the caller's uploads, pending ones "
                "included; any other value: the room's images.",
                {"type": "string", "examples": ["true"]},
            ),
        ),
        security=_VIEWERS,
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/events",
        list_events,
        "listEvents",
        "Page through a room's event log",
        "images",
        {200: Answer("Logged events after `after`, in order.", EventPage)},
        {401: ("passcode_required",), 404: ("room_not_found",), **_PAGE_ERRORS},
        parameters=_page("seq", 200),
        security=_VIEWERS,
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/pending",
        list_pending,
        "listPending",
        "The moderation queue (host)",
        "moderation",
        {200: Answer("Pending images, oldest first.", ImagePage)},
        {**_HOST_ONLY, 404: ("room_not_found",), **_PAGE_ERRORS},
        parameters=_page("image id", 50),
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/images/{image_id}/approve",
        approve_image,
        "approveImage",
        "Approve a pending image (host)",
        "moderation",
        {200: Answer("The image, approved; `image_added` is emitted.", ImageBody)},
        {**_HOST_ONLY, 404: ("room_not_found", "image_not_found")},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/images/{image_id}/reject",
        reject_image,
        "rejectImage",
        "Reject (delete) a pending image (host)",
        "moderation",
        {204: Answer("Deleted; `moderation_queue` is emitted.")},
        {**_HOST_ONLY, 404: ("room_not_found", "image_not_found"), 409: ("not_pending",)},
        security=("hostKey", "sessionCookie"),
    ),
    Operation(
        "DELETE",
        "/api/rooms/{token}/images/{image_id}",
        delete_image,
        "deleteImage",
        "Delete an image (host or uploader)",
        "images",
        {204: Answer("Deleted; `image_removed` is emitted.")},
        {
            401: ("credentials_required", "passcode_required"),
            403: ("forbidden",),
            404: ("room_not_found", "image_not_found"),
        },
        security=("hostKey", "sessionCookie", "participantKey", "participantCookie"),
    ),
    Operation(
        "GET",
        "/media/{key}/{name}",
        rendition_file,
        "getRendition",
        "A rendition file (display or thumbnail)",
        "images",
        {
            200: Answer(
                "The JPEG; cached privately for `IMAGESHARK_MEDIA_MAX_AGE_SECONDS`.",
                Binary("image/jpeg"),
            ),
            302: Answer(
                "With object storage: the JPEG is at `Location` (a presigned GET, or "
                "`IMAGESHARK_MEDIA_BASE_URL`); the redirect is cached privately for "
                "`IMAGESHARK_MEDIA_MAX_AGE_SECONDS`, at most the presigned URL's lifetime.",
                None,
                _LOCATION,
            ),
        },
        {404: ("not_found",), 503: ("busy",)},
    ),
]
routes = [operation.route() for operation in operations]
