"""HTTP routes of images: upload, list, delete, original download, and rendition files."""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from web.errors import ApiError
from web.rooms.endpoints import current_participant, room_for
from web.services import services

IMMUTABLE = "public, max-age=31536000, immutable"


async def upload_image(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    participant = await current_participant(request, room)
    image, created = await app.images.upload(room, participant, request)
    return JSONResponse(image, status_code=201 if created else 200)


async def list_images(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    page = await app.images.page(
        room, request.query_params.get("after"), request.query_params.get("limit")
    )
    return JSONResponse(page)


async def list_events(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
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
        authorization=request.headers.get("authorization"),
        participant=await current_participant(request, room),
    )
    return Response(status_code=204)


async def download_original(request: Request) -> Response:
    app = services(request)
    room = await room_for(request)
    app.rooms.require_host(room, request.headers.get("authorization"))
    image = await app.images.get(room, request.path_params["image_id"])
    extension = image.mime_type.rsplit("/", 1)[-1]
    original = app.store.original_file(image.storage_key)
    if not await to_thread.run_sync(original.is_file):
        raise ApiError(404, "not_found", "The original file is missing.")
    return FileResponse(
        original,
        media_type=image.mime_type,
        filename=f"{room.token[:8]}-{image.id}.{extension}",
        headers={"Cache-Control": "private, no-store"},
    )


async def rendition_file(request: Request) -> Response:
    app = services(request)
    path = app.store.public_file(request.path_params["key"], request.path_params["name"])
    if path is None or not await to_thread.run_sync(path.is_file):
        raise ApiError(404, "not_found", "No such image file.")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": IMMUTABLE})


routes = [
    Route("/api/rooms/{token}/images", upload_image, methods=["POST"]),
    Route("/api/rooms/{token}/images", list_images, methods=["GET"]),
    Route("/api/rooms/{token}/events", list_events, methods=["GET"]),
    Route("/api/rooms/{token}/images/{image_id}", delete_image, methods=["DELETE"]),
    Route("/api/rooms/{token}/images/{image_id}/original", download_original, methods=["GET"]),
    Route("/media/{key}/{name}", rendition_file, methods=["GET", "HEAD"]),
]
