"""HTTP routes of images: upload, list, delete, original download, and rendition files."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from web.errors import ApiError
from web.images.repository import PENDING
from web.media import MediaFile
from web.rooms.endpoints import (
    PARTICIPANT_HEADER,
    client_address,
    not_joined,
    room_for,
    viewer_of,
)
from web.services import services
from web.uploads import MultipartBody


def media_cache_control(max_age_seconds: int) -> str:
    """``Cache-Control`` of a rendition: private (no proxy or CDN keeps a copy that would
    outlive a deletion or a rejection), reused by the browser for ``max_age_seconds``
    (0: revalidated on every use)."""
    if max_age_seconds == 0:
        return "private, no-cache"
    return f"private, max-age={max_age_seconds}"


def media_response(found: MediaFile, headers: dict[str, str]) -> Response:
    """The response sending ``found`` with ``headers``: a local file as a ``FileResponse``
    (``ETag``, ``Last-Modified``, ranges), bytes as they are."""
    if found.path is not None:
        return FileResponse(found.path, media_type=found.content_type, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


async def upload_image(request: Request) -> Response:
    app = services(request)
    room = await app.rooms.get_for_upload(request.path_params["token"])
    viewer = await viewer_of(request, room)
    image, created = await app.images.upload(
        room, viewer, MultipartBody(request), client_address(request)
    )
    return JSONResponse(image, status_code=201 if created else 200)


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
    return JSONResponse(page)


async def list_pending(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    app.rooms.require_host(room, request.headers.get("authorization"))
    page = await app.images.page(
        room,
        request.query_params.get("after"),
        request.query_params.get("limit"),
        status=PENDING,
    )
    return JSONResponse(page)


async def approve_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    app.rooms.require_host(room, request.headers.get("authorization"))
    return JSONResponse(await app.images.approve(room, request.path_params["image_id"]))


async def reject_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    app.rooms.require_host(room, request.headers.get("authorization"))
    await app.images.reject(room, request.path_params["image_id"])
    return Response(status_code=204)


async def list_events(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    await viewer_of(request, room)
    page = await app.images.events(
        room, request.query_params.get("after"), request.query_params.get("limit")
    )
    return JSONResponse(page)


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


routes = [
    Route("/api/rooms/{token}/images", upload_image, methods=["POST"]),
    Route("/api/rooms/{token}/images", list_images, methods=["GET"]),
    Route("/api/rooms/{token}/events", list_events, methods=["GET"]),
    Route("/api/rooms/{token}/pending", list_pending, methods=["GET"]),
    Route("/api/rooms/{token}/images/{image_id}/approve", approve_image, methods=["POST"]),
    Route("/api/rooms/{token}/images/{image_id}/reject", reject_image, methods=["POST"]),
    Route("/api/rooms/{token}/images/{image_id}", delete_image, methods=["DELETE"]),
    Route("/media/{key}/{name}", rendition_file, methods=["GET", "HEAD"]),
]
