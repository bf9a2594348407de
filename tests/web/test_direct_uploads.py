"""Direct uploads on the local folder, against real servers (SQLite and PostgreSQL): ask,
``PUT`` the bytes to the service's own signed URL, complete, read the state; live clients get
``image_added`` once; every bad input; a restart mid-processing loses nothing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.photos import hostile_corpus, make_image_bytes
from tests.polling import poll_until
from tests.realtime.live_client import LiveClient
from web.database import Database
from web.images.upload_repository import UploadRepository
from web.replica import build_replica
from web.schema import images, room_events, rooms, uploads
from web.settings import Settings

PHOTO = make_image_bytes("jpeg", size=(1200, 900))
OTHER_PHOTO = make_image_bytes("jpeg", size=(900, 1200), name="rocket")


@pytest.fixture
async def server(backend_settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in run_server(backend_settings):
        yield live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        yield client


async def new_room(http: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
    response = await http.post("/api/rooms", json={"title": "Direct", **settings})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ask(http: httpx.AsyncClient, token: str, data: bytes, **overrides: Any) -> httpx.Response:
    body = {"filename": "IMG_0001.JPG", "content_type": "image/jpeg", "size": len(data)}
    return await http.post(f"/api/rooms/{token}/uploads", json={**body, **overrides})


async def issued(http: httpx.AsyncClient, token: str, data: bytes, **overrides: Any) -> dict:
    response = await ask(http, token, data, **overrides)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def send(http: httpx.AsyncClient, upload: dict[str, Any], data: bytes) -> httpx.Response:
    assert upload["method"] == "PUT"
    return await http.put(upload["url"], content=data, headers=upload["headers"])


async def complete(http: httpx.AsyncClient, token: str, upload_id: str) -> httpx.Response:
    return await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")


async def settled(http: httpx.AsyncClient, token: str, upload_id: str) -> dict[str, Any]:
    """The upload's state once it is no longer processing."""

    async def probe() -> dict[str, Any] | None:
        response = await http.get(f"/api/rooms/{token}/uploads/{upload_id}")
        assert response.status_code == 200, response.text
        state = dict(response.json())
        return state if state["status"] != "processing" else None

    return await poll_until(probe, deadline=60, what="upload processed")


async def direct_upload(
    http: httpx.AsyncClient, token: str, data: bytes, **overrides: Any
) -> dict[str, Any]:
    upload = await issued(http, token, data, **overrides)
    sent = await send(http, upload, data)
    assert sent.status_code == 204, sent.text
    started = await complete(http, token, upload["upload_id"])
    assert started.status_code == 202, started.text
    return await settled(http, token, upload["upload_id"])


async def room_counts(settings: Settings, token: str) -> tuple[int, int]:
    """(images, room events) of the room ``token``."""
    database = Database(settings)
    try:
        async with database.read() as connection:
            room_id = await connection.scalar(select(rooms.c.id).where(rooms.c.token == token))
            counted = []
            for table in (images, room_events):
                counted.append(
                    int(
                        await connection.scalar(
                            select(func.count())
                            .select_from(table)
                            .where(table.c.room_id == room_id)
                        )
                        or 0
                    )
                )
            return counted[0], counted[1]
    finally:
        await database.close()


def direct_files(settings: Settings) -> list[str]:
    folder = settings.data_dir / "direct"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


async def bytes_deleted(settings: Settings) -> None:
    """Wait until no direct upload's bytes are left (deleted just after the row's last
    update, which is what the state answers)."""
    await poll_until(lambda: direct_files(settings) == [], deadline=10, what="bytes deleted")


async def set_expiry(settings: Settings, upload_id: str, when: datetime) -> None:
    database = Database(settings)
    try:
        async with database.transaction() as connection:
            await connection.execute(
                update(uploads).where(uploads.c.id == upload_id).values(expires_at=when)
            )
    finally:
        await database.close()


async def upload_rows(settings: Settings, *tokens: str) -> int:
    """How many uploads the rooms of ``tokens`` have (the PostgreSQL database is shared)."""
    database = Database(settings)
    try:
        async with database.read() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(uploads.join(rooms, uploads.c.room_id == rooms.c.id))
                .where(rooms.c.token.in_(tokens))
            )
            return int(count or 0)
    finally:
        await database.close()


async def test_direct_upload_end_to_end_reaches_live_clients_once(
    server: LiveServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # At INFO, as `imageshark serve` logs: the processing's own log lines are written too.
    caplog.set_level(logging.INFO, logger="web.images.direct")
    room = await new_room(http)
    token = room["token"]
    live = LiveClient(server.base_url, token, "wall")
    await live.connect()
    try:
        upload = await issued(http, token, PHOTO, caption="  First  dance ")
        assert upload["method"] == "PUT" and upload["fields"] == {}
        assert upload["headers"] == {"Content-Type": "image/jpeg"}
        assert upload["url"].startswith(
            f"{server.base_url}/api/rooms/{token}/uploads/{upload['upload_id']}/body?signature="
        )
        assert datetime.fromisoformat(upload["expires_at"]) > datetime.now(UTC)
        sent = await send(http, upload, PHOTO)
        assert sent.status_code == 204, sent.text
        assert sent.headers["etag"] == f'"{hashlib.sha256(PHOTO).hexdigest()}"'

        first = await complete(http, token, upload["upload_id"])
        assert first.status_code == 202
        assert first.json() == {"upload_id": upload["upload_id"], "status": "processing"}
        again = await complete(http, token, upload["upload_id"])
        assert again.status_code == 202 and again.json()["status"] in ("processing", "done")

        state = await settled(http, token, upload["upload_id"])
        assert state["status"] == "done" and state["error"] is None
        image = state["image"]
        assert image["caption"] == "First dance" and (image["width"], image["height"]) == (
            1200,
            900,
        )
        _, added = await live.next("image_added")
        assert added == image
        rendition = await http.get(image["url"])
        assert rendition.status_code == 200 and rendition.content[:2] == b"\xff\xd8"

        # A third complete after done changes nothing; the next event is the next upload's.
        assert (await complete(http, token, upload["upload_id"])).json()["status"] == "done"
        posted = await http.post(
            f"/api/rooms/{token}/images", files={"file": ("b.jpg", OTHER_PHOTO, "image/jpeg")}
        )
        assert posted.status_code == 201, posted.text
        _, following = await live.next("image_added")
        assert following["id"] == posted.json()["id"]
    finally:
        await live.close()
    await bytes_deleted(server.settings)
    assert await room_counts(server.settings, token) == (2, 2)
    processed = [r for r in caplog.records if r.getMessage() == "direct upload processed"]
    assert [(r.image_id, r.new_image) for r in processed] == [(image["id"], True)]


async def test_declared_size_or_type_is_refused_before_any_url(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = (await new_room(http))["token"]
    limit = server.settings.max_upload_bytes
    too_big = await ask(http, token, PHOTO, size=limit + 1)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "file_too_large"
    for content_type in ("application/pdf", "image/svg+xml", "text/html"):
        wrong = await ask(http, token, PHOTO, content_type=content_type)
        assert wrong.status_code == 415, content_type
        assert wrong.json()["error"]["code"] == "unsupported_media_type"
    bad = await ask(http, token, PHOTO, size=0)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_size"
    unknown_room = await ask(http, "x" * 24, PHOTO)
    assert unknown_room.status_code == 404
    closed = await new_room(http)
    closing = await http.post(
        f"/api/rooms/{closed['token']}/close",
        headers={"Authorization": f"Bearer {closed['host_key']}"},
    )
    assert closing.status_code == 200, closing.text
    refused = await ask(http, closed["token"], PHOTO)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "room_closed"
    assert await upload_rows(server.settings, token, closed["token"]) == 0


async def test_more_bytes_than_declared_are_refused(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = (await new_room(http))["token"]
    upload = await issued(http, token, PHOTO[:-10])
    sent = await send(http, upload, PHOTO)
    assert sent.status_code == 413 and sent.json()["error"]["code"] == "file_too_large"
    short = await send(http, upload, PHOTO[:-20])
    assert short.status_code == 400 and short.json()["error"]["code"] == "size_mismatch"
    assert direct_files(server.settings) == []
    nothing = await complete(http, token, upload["upload_id"])
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "upload_not_received"
    mistyped = await http.put(
        upload["url"], content=PHOTO[:-10], headers={"Content-Type": "image/png"}
    )
    assert mistyped.status_code == 415
    assert mistyped.json()["error"]["code"] == "content_type_mismatch"
    wrong_digest = await issued(http, token, PHOTO, sha256="0" * 64)
    refused = await send(http, wrong_digest, PHOTO)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "sha256_mismatch"
    assert direct_files(server.settings) == []


@pytest.mark.parametrize(
    ("name", "status"),
    [("random.jpg", 415), ("truncated.jpg", 422), ("bomb_65000x65000.jpg", 413)],
)
async def test_bytes_that_are_not_a_whole_image_fail_like_a_direct_post(
    server: LiveServer, http: httpx.AsyncClient, name: str, status: int
) -> None:
    """A fake JPEG, a truncated one, a decompression bomb: the error a POST answers."""
    data = hostile_corpus()[name]
    token = (await new_room(http))["token"]
    posted = await http.post(
        f"/api/rooms/{token}/images", files={"file": ("a.jpg", data, "image/jpeg")}
    )
    assert posted.status_code == status
    code = posted.json()["error"]["code"]
    state = await direct_upload(http, token, data)
    assert state["status"] == "failed" and state["image"] is None
    assert state["error"]["code"] == code
    await bytes_deleted(server.settings)
    assert await room_counts(server.settings, token) == (0, 0)


async def test_a_chunked_body_is_refused_the_moment_it_passes_the_declared_size(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = (await new_room(http))["token"]
    upload = await issued(http, token, PHOTO)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(PHOTO) + 64 * 1024, 64 * 1024):
            yield (PHOTO + bytes(64 * 1024))[start : start + 64 * 1024]

    sent = await http.put(upload["url"], content=chunks(), headers=upload["headers"])
    assert sent.status_code == 413 and sent.json()["error"]["code"] == "file_too_large"
    assert direct_files(server.settings) == []


async def test_the_room_rules_of_a_direct_post_apply(make_settings: SettingsFactory) -> None:
    """Passcode and rate limit when asking; the quota under the room lock when processing."""
    settings = make_settings(anonymous_upload_rate_limit="2/minute")
    async for live in run_server(settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            locked = await new_room(http, passcode="4821")
            refused = await ask(http, locked["token"], PHOTO)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "passcode_required"

            room = await new_room(http, max_images=1)
            token = room["token"]
            first = await direct_upload(http, token, PHOTO)
            assert first["status"] == "done"
            second = await direct_upload(http, token, OTHER_PHOTO)
            assert second["status"] == "failed"
            assert second["error"]["code"] == "room_quota_reached"
            limited = await ask(http, token, PHOTO)
            assert limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limited"
            hosted = await http.post(
                f"/api/rooms/{locked['token']}/uploads",
                json={"filename": "a.jpg", "content_type": "image/png", "size": 10},
                headers={"Authorization": f"Bearer {locked['host_key']}"},
            )
            assert hosted.status_code == 201, hosted.text
            await bytes_deleted(settings)
            assert await room_counts(settings, token) == (1, 1)


async def test_unknown_uncompleted_and_empty_uploads(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = (await new_room(http))["token"]
    unknown = "A" * 22
    for response in (
        await complete(http, token, unknown),
        await http.get(f"/api/rooms/{token}/uploads/{unknown}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "upload_not_found"
    upload = await issued(http, token, PHOTO)
    pending = await http.get(f"/api/rooms/{token}/uploads/{upload['upload_id']}")
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "upload_not_completed"
    nothing = await complete(http, token, upload["upload_id"])
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "upload_not_received"
    other = (await new_room(http))["token"]
    elsewhere = await complete(http, other, upload["upload_id"])
    assert elsewhere.status_code == 404


async def test_urls_reused_forged_foreign_or_expired_are_refused(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    room = await new_room(http)
    token = room["token"]
    other = (await new_room(http))["token"]
    upload = await issued(http, token, PHOTO)
    forged = await http.put(
        upload["url"].replace("signature=", "signature=x"),
        content=PHOTO,
        headers=upload["headers"],
    )
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "upload_url_invalid"
    unsigned = await http.put(
        upload["url"].partition("?")[0], content=PHOTO, headers=upload["headers"]
    )
    assert unsigned.status_code == 403
    foreign = await http.put(
        upload["url"].replace(f"/rooms/{token}/", f"/rooms/{other}/"),
        content=PHOTO,
        headers=upload["headers"],
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "upload_url_invalid"
    second = await issued(http, token, OTHER_PHOTO)
    swapped = await http.put(
        upload["url"].replace(upload["upload_id"], second["upload_id"]),
        content=OTHER_PHOTO,
        headers=second["headers"],
    )
    assert swapped.status_code == 403

    assert (await send(http, upload, PHOTO)).status_code == 204
    assert (await complete(http, token, upload["upload_id"])).status_code == 202
    reused = await send(http, upload, PHOTO)
    assert reused.status_code == 410 and reused.json()["error"]["code"] == "upload_completed"
    assert (await settled(http, token, upload["upload_id"]))["status"] == "done"

    await set_expiry(server.settings, second["upload_id"], datetime.now(UTC) - timedelta(seconds=1))
    late = await send(http, second, OTHER_PHOTO)
    assert late.status_code == 410 and late.json()["error"]["code"] == "upload_url_expired"
    expired = await complete(http, token, second["upload_id"])
    assert expired.status_code == 410
    assert await room_counts(server.settings, token) == (1, 1)


async def test_same_bytes_already_in_the_room_end_done_with_that_image_and_no_event(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    token = (await new_room(http))["token"]
    posted = await http.post(
        f"/api/rooms/{token}/images", files={"file": ("a.jpg", PHOTO, "image/jpeg")}
    )
    assert posted.status_code == 201
    live = LiveClient(server.base_url, token, "wall", last_seq=posted.json()["seq"])
    await live.connect()
    try:
        state = await direct_upload(http, token, PHOTO, sha256=hashlib.sha256(PHOTO).hexdigest())
        assert state["status"] == "done" and state["image"] == posted.json()
        other = await http.post(
            f"/api/rooms/{token}/images", files={"file": ("b.jpg", OTHER_PHOTO, "image/jpeg")}
        )
        _, added = await live.next("image_added")
        assert added["id"] == other.json()["id"]
    finally:
        await live.close()
    events = await http.get(f"/api/rooms/{token}/events")
    assert [event["seq"] for event in events.json()["items"]] == [1, 2]
    await bytes_deleted(server.settings)


async def test_expired_uploads_never_completed_are_swept(backend_settings: Settings) -> None:
    async for live in run_server(backend_settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            token = (await new_room(http))["token"]
            kept = await issued(http, token, PHOTO)
            stale = await issued(http, token, OTHER_PHOTO)
            assert (await send(http, stale, OTHER_PHOTO)).status_code == 204
    await set_expiry(backend_settings, stale["upload_id"], datetime.now(UTC) - timedelta(seconds=1))
    assert direct_files(backend_settings) == [stale["upload_id"]]
    replica = build_replica(backend_settings, renditions_on_demand=True)
    await replica.start()
    try:
        assert await replica.uploads.sweep() >= 1  # PostgreSQL: other tests' too
        assert await replica.uploads.sweep() == 0
    finally:
        await replica.stop()
    assert direct_files(backend_settings) == []
    repository = UploadRepository(Database(backend_settings))
    try:
        assert await repository.get(stale["upload_id"]) is None
        assert await repository.get(kept["upload_id"]) is not None
        ids = [stale["upload_id"], kept["upload_id"]]
        assert await repository.pending(ids) == {kept["upload_id"]}
    finally:
        await repository.database.close()


async def test_a_claim_reads_the_upload_and_only_the_first_finish_marks_it(
    backend_settings: Settings,
) -> None:
    async for live in run_server(backend_settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            token = (await new_room(http))["token"]
            upload = await issued(http, token, PHOTO)
            posted = await http.post(
                f"/api/rooms/{token}/images", files={"file": ("a.jpg", PHOTO, "image/jpeg")}
            )
            assert posted.status_code == 201
    upload_id = upload["upload_id"]
    repository = UploadRepository(Database(backend_settings))
    try:
        claimed_at = datetime.now(UTC)
        assert await repository.claim(upload_id, claimed_at) is None  # issued: not processing
        assert await repository.start_processing(upload_id, claimed_at - timedelta(seconds=5))
        claimed = await repository.claim(upload_id, claimed_at)
        assert claimed is not None
        assert (claimed.id, claimed.room_token, claimed.status) == (upload_id, token, "processing")
        assert claimed.claimed_at == claimed_at
        assert claimed == await repository.get(upload_id)
        assert await repository.finish(upload_id, posted.json()["id"]) is True
        assert await repository.finish(upload_id, posted.json()["id"]) is False
        assert await repository.claim(upload_id, claimed_at) is None  # done
        done = await repository.get(upload_id)
        assert done is not None and (done.status, done.image_id) == ("done", posted.json()["id"])
    finally:
        await repository.database.close()


@pytest.mark.parametrize("stored_before_the_crash", [False, True])
async def test_a_restart_mid_processing_loses_nothing_and_adds_nothing_twice(
    backend_settings: Settings, stored_before_the_crash: bool
) -> None:
    """A ``202`` whose process died before the image was stored, or after it was committed
    but before the upload was marked done: the next start finishes it, one image, one event."""
    async for live in run_server(backend_settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            token = (await new_room(http))["token"]
            upload = await issued(http, token, PHOTO)
            assert (await send(http, upload, PHOTO)).status_code == 204
            if stored_before_the_crash:
                posted = await http.post(
                    f"/api/rooms/{token}/images", files={"file": ("a.jpg", PHOTO, "image/jpeg")}
                )
                assert posted.status_code == 201
    # What `complete` wrote before its process died: the row says processing, no task ran.
    repository = UploadRepository(Database(backend_settings))
    try:
        assert await repository.start_processing(upload["upload_id"], datetime.now(UTC))
    finally:
        await repository.database.close()

    async for live in run_server(backend_settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            state = await settled(http, token, upload["upload_id"])
            assert state["status"] == "done", state
            events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
    assert [event["kind"] for event in events] == ["image_added"]
    assert events[0]["payload"] == state["image"]
    assert await room_counts(backend_settings, token) == (1, 1)
    assert direct_files(backend_settings) == []


async def test_shutdown_lets_processing_finish(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async for live in run_server(settings):
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            token = (await new_room(http))["token"]
            upload = await issued(http, token, PHOTO)
            assert (await send(http, upload, PHOTO)).status_code == 204
            assert (await complete(http, token, upload["upload_id"])).status_code == 202
    # Stopped right after the 202: the shutdown drained the task, nothing is left to resume.
    repository = UploadRepository(Database(settings))
    try:
        stored = await repository.get(upload["upload_id"])
        assert stored is not None and stored.status == "done" and stored.image_id is not None
    finally:
        await repository.database.close()
    assert await room_counts(settings, token) == (1, 1)
    assert direct_files(settings) == []
