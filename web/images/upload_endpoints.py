"""HTTP routes of direct uploads: ask for one, send its bytes (local folder), complete it,
read its state (:mod:`web.images.direct`)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from web.images.direct import DECLARED_TYPES
from web.images.schemas import UploadDeclaration, UploadIssued, UploadStarted, UploadState
from web.images.upload_repository import Upload
from web.rooms.endpoints import client_address, json_body, viewer_of
from web.rooms.views import request_base_url
from web.services import services
from web.uploads import RawBody
from web.wire import Answer, Operation, Parameter, Security, json_answer, parse_body

BODY_PATH = "/api/rooms/{token}/uploads/{upload_id}/body"


async def create_upload(request: Request) -> Response:
    app = services(request)
    token = request.path_params["token"]
    room = await app.rooms.get_for_upload(token)
    viewer = await viewer_of(request, room)
    declared = parse_body(UploadDeclaration, await json_body(request)).model_dump()
    base = request_base_url(request, app.settings)

    def service_url(upload_id: str, signature: str) -> str:
        path = BODY_PATH.format(token=token, upload_id=upload_id)
        return f"{base}{path}?signature={quote(signature, safe='')}"

    issued = await app.uploads.create(room, viewer, declared, client_address(request), service_url)
    target = issued.target
    body = UploadIssued(
        upload_id=issued.upload_id,
        method=target.method,
        url=target.url,
        fields=dict(target.fields),
        headers=dict(target.headers),
        expires_at=target.expires_at.isoformat(),
    )
    return json_answer(body, status=201)


async def upload_body(request: Request) -> Response:
    app = services(request)
    room = await app.rooms.get_for_upload(request.path_params["token"])

    def body(upload: Upload) -> RawBody:
        return RawBody(request, content_type=upload.content_type, declared_size=upload.size)

    received = await app.uploads.receive_body(
        room,
        request.path_params["upload_id"],
        request.query_params.get("signature"),
        body,
        client_address(request),
    )
    return Response(status_code=204, headers={"ETag": f'"{received.sha256}"'})


async def complete_upload(request: Request) -> Response:
    app = services(request)
    room = await app.rooms.get_for_upload(request.path_params["token"])
    await viewer_of(request, room)
    upload_id = request.path_params["upload_id"]
    status = await app.uploads.complete(room, upload_id)
    started = UploadStarted.model_validate({"upload_id": upload_id, "status": status})
    return json_answer(started, status=202)


async def get_upload(request: Request) -> Response:
    app = services(request)
    room = await app.rooms.get_gallery(request.path_params["token"])
    await viewer_of(request, room)
    state = await app.uploads.state(room, request.path_params["upload_id"])
    return json_answer(UploadState.model_validate(state))


_VIEWERS: tuple[Security, ...] = (
    "anonymous",
    "hostKey",
    "sessionCookie",
    "participantKey",
    "participantCookie",
)

operations = [
    Operation(
        "POST",
        "/api/rooms/{token}/uploads",
        create_upload,
        "createUpload",
        "Ask for a direct upload",
        "uploads",
        {
            201: Answer(
                "Send the bytes to `url` with `method` and `fields`/`headers`, then call "
                "`complete`. On the local folder: `PUT` to the service's own signed URL.",
                UploadIssued,
            )
        },
        {
            400: ("invalid_host",),
            401: ("passcode_required", "join_required"),
            404: ("room_not_found",),
            409: ("room_closed", "uploads_paused", "room_ended"),
            413: ("file_too_large",),
            415: ("unsupported_media_type",),
            422: (
                "unknown_field",
                "invalid_filename",
                "invalid_content_type",
                "invalid_size",
                "invalid_caption",
                "invalid_sha256",
            ),
            429: ("rate_limited",),
        },
        body=UploadDeclaration,
        security=_VIEWERS,
        description="The rules of `POST .../images` apply (room, passcode, pause, join, rate "
        "limit), and the declared size and type are checked before any URL is issued.",
    ),
    Operation(
        "PUT",
        BODY_PATH,
        upload_body,
        "putUploadBody",
        "Send a direct upload's bytes (local folder)",
        "uploads",
        {204: Answer("Kept; call `complete`.", headers={"ETag": "The body's SHA-256, quoted."})},
        {
            400: ("size_mismatch", "sha256_mismatch"),
            403: ("upload_url_invalid",),
            404: ("room_not_found",),
            408: ("upload_timeout",),
            409: ("room_ended",),
            410: ("upload_url_expired", "upload_completed"),
            413: ("file_too_large",),
            415: ("content_type_mismatch",),
            429: ("too_many_uploads",),
            507: ("insufficient_storage",),
        },
        raw_body=tuple(sorted(DECLARED_TYPES)),
        parameters=(
            Parameter(
                "signature",
                "query",
                "The signature in the `url` `POST .../uploads` answered; it alone authorises "
                "the request.",
            ),
        ),
        description="The URL a local-folder service answers for a direct upload: the body is "
        "the file, with the `Content-Type` declared and exactly the declared size; sending it "
        "again before `complete` replaces it.",
    ),
    Operation(
        "POST",
        "/api/rooms/{token}/uploads/{upload_id}/complete",
        complete_upload,
        "completeUpload",
        "Complete a direct upload",
        "uploads",
        {
            202: Answer(
                "Processing; `image_added` goes out when the renditions are stored. "
                "Calling again is harmless (it answers the current status).",
                UploadStarted,
            )
        },
        {
            401: ("passcode_required",),
            404: ("room_not_found", "upload_not_found"),
            409: ("upload_not_received", "room_ended"),
            410: ("upload_url_expired",),
        },
        security=_VIEWERS,
    ),
    Operation(
        "GET",
        "/api/rooms/{token}/uploads/{upload_id}",
        get_upload,
        "getUpload",
        "A completed direct upload's state",
        "uploads",
        {
            200: Answer(
                "`processing`, `done` with its image, or `failed` with its error.", UploadState
            )
        },
        {
            401: ("passcode_required",),
            404: ("room_not_found", "upload_not_found"),
            409: ("upload_not_completed",),
        },
        security=_VIEWERS,
    ),
]
