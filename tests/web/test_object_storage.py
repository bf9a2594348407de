"""The service on object storage (``IMAGESHARK_STORAGE_URL=s3://...``) against moto's S3
server: uploads through the API, redirects to the store, downloads, the ZIP export, deletion,
the store going down and coming back, the orphan sweep, readiness, and the URL settings."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from obstore.store import AzureStore, GCSStore, S3Store
from PIL import Image
from pydantic import ValidationError

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.object_store import Bucket, MotoServer, new_bucket
from tests.photos import assert_upright, make_image_bytes, make_phone_jpeg, reference_photo
from tests.pipeline.test_renditions import assert_clean_jpeg
from tests.polling import poll_until
from tests.web.test_direct_uploads import set_expiry
from tests.web.test_media_store import SPEC, committed_of
from web.object_media import ORPHAN_GRACE_SECONDS, ObjectMedia
from web.object_store import StoreUnavailable, browser_origins, open_object_store
from web.pipeline import RenditionPool
from web.replica import build_replica
from web.settings import Settings
from web.storage import LocalImageStore

PREFIX = "photos"
# What the data folder may hold with object storage: the database and the owner locks.
_NOT_IMAGES = ("imageshark.db", "imageshark.db-wal", "imageshark.db-shm")


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 12 MP phone JPEG stored sideways (EXIF orientation 6) with GPS; over 1 MiB, so the
    upload is spilled to disk while it streams in."""
    path = tmp_path_factory.mktemp("photos") / "IMG_0002.JPG"
    return make_phone_jpeg(path, orientation=6, size=(4000, 3000), gps=True).read_bytes()


@pytest.fixture(params=["sqlite", "postgresql"])
def s3_settings(
    request: pytest.FixtureRequest, make_settings: SettingsFactory, s3_bucket: Bucket
) -> Settings:
    """Settings with the image files in this test's bucket, on each database backend."""
    if request.param == "postgresql":
        pg_url = request.getfixturevalue("pg_database_url")
        return make_settings(database_url=pg_url, **s3_bucket.settings(PREFIX))
    return make_settings(**s3_bucket.settings(PREFIX))


@pytest.fixture
async def s3_client(s3_settings: Settings) -> AsyncIterator[AppClient]:
    async for client in _app_client(s3_settings):
        yield client


async def new_room(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/rooms", json={"title": "Object room", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def host(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


async def post_image(http: httpx.AsyncClient, room: dict[str, Any], data: bytes) -> httpx.Response:
    return await http.post(
        f"/api/rooms/{room['token']}/images",
        files={"file": ("photo", data, "application/octet-stream")},
    )


def storage_key(image: dict[str, Any]) -> str:
    return str(image["url"].split("/")[2])


def image_files(data_dir: Path) -> list[Path]:
    """Every file in the data folder other than the database and owner lock files."""
    return sorted(
        path
        for path in data_dir.rglob("*")
        if path.is_file() and path.name not in _NOT_IMAGES and path.parent.name != "owners"
    )


def follow(redirect: httpx.Response) -> httpx.Response:
    """GET the URL a redirect points to, straight from the store (no service in between)."""
    assert redirect.status_code == 302, redirect.text
    target = redirect.headers["location"]
    assert target.startswith("http://127.0.0.1:"), target
    return httpx.get(target)


async def test_upload_on_s3_is_served_upright_and_clean_from_the_store(
    s3_client: AppClient, s3_bucket: Bucket, phone_photo: bytes
) -> None:
    http = s3_client.http
    room = await new_room(http)
    response = await post_image(http, room, phone_photo)
    assert response.status_code == 201, response.text
    image = response.json()
    key = storage_key(image)
    assert s3_bucket.object_keys() == [
        f"{PREFIX}/{key}/display.jpg",
        f"{PREFIX}/{key}/original",
        f"{PREFIX}/{key}/thumb.jpg",
    ]

    for url_field, size in (
        ("url", (image["width"], image["height"])),
        ("thumb_url", (image["thumb_width"], image["thumb_height"])),
    ):
        redirect = await http.get(image[url_field])
        assert redirect.status_code == 302
        # Bounded by the presigned GET's lifetime (an hour), here by media_max_age_seconds.
        assert redirect.headers["cache-control"] == "private, max-age=300"
        served = follow(redirect)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        picture = assert_clean_jpeg(served.content, size)
        assert_upright(picture, reference_photo("coffee", (4000, 3000)))
        assert not picture.getexif()
    # The data folder holds no image file: only the database and the owner lock.
    assert image_files(s3_client.settings.data_dir) == []

    # The host's original: a presigned link to the stored bytes, offered as an attachment.
    path = f"/api/rooms/{room['token']}/images/{image['id']}/original"
    assert (await http.get(path)).status_code == 401
    original = follow(await http.get(path, headers=host(room)))
    # GPS tags blanked in place (the room does not keep locations): same length, same start.
    assert len(original.content) == len(phone_photo) and original.content[:2] == b"\xff\xd8"
    assert original.headers["content-disposition"].startswith("attachment;")

    # Full resolution: rendered on first request, kept in the bucket, served from it.
    full = follow(await http.get(f"/api/rooms/{room['token']}/images/{image['id']}/download"))
    assert_upright(assert_clean_jpeg(full.content, (4000, 3000)), reference_photo())
    assert f"{PREFIX}/{key}/full.jpg" in s3_bucket.object_keys()
    assert image_files(s3_client.settings.data_dir) == []

    # Deleting the image removes every object of its key.
    deleted = await http.delete(
        f"/api/rooms/{room['token']}/images/{image['id']}", headers=host(room)
    )
    assert deleted.status_code == 204
    assert s3_bucket.object_keys() == []
    assert (await http.get(image["url"])).status_code == 404


async def test_downloads_from_s3_are_named_like_the_local_ones(s3_client: AppClient) -> None:
    """The presigned GETs of the original and the full-size file make the store answer with
    the room's name for the file (signed into the URL), not the storage key; a non-ASCII
    title as RFC 6266 ``filename*`` after an ASCII ``filename``."""
    http = s3_client.http
    for title, name in (
        ("Object room", 'filename="Object room-{id}.jpg"'),
        (
            "Fête à Zürich",
            'filename="Fete a Zurich-{id}.jpg"; '
            "filename*=UTF-8''F%C3%AAte%20%C3%A0%20Z%C3%BCrich-{id}.jpg",
        ),
    ):
        room = await new_room(http, title=title)
        posted = await post_image(http, room, make_image_bytes("jpeg", size=(640, 480)))
        assert posted.status_code == 201, posted.text
        image = posted.json()
        for download in ("download", "original"):
            path = f"/api/rooms/{room['token']}/images/{image['id']}/{download}"
            redirect = await http.get(path, headers=host(room))
            assert "response-content-disposition=" in redirect.headers.get("location", "")
            served = follow(redirect)
            assert served.status_code == 200, served.text
            assert served.headers["content-type"] == "image/jpeg"
            assert served.headers["content-disposition"] == (
                f"attachment; {name.format(id=image['id'])}"
            ), download
            assert served.content[:2] == b"\xff\xd8"


async def test_zip_export_streams_from_the_store(s3_client: AppClient) -> None:
    http = s3_client.http
    room = await new_room(http)
    sent = [
        make_image_bytes("png", size=(640, 480), name="rocket"),
        make_image_bytes("jpeg", size=(800, 600), name="astronaut"),
    ]
    for data in sent:
        assert (await post_image(http, room, data)).status_code == 201
    response = await http.get(f"/api/rooms/{room['token']}/archive.zip", headers=host(room))
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    # Compared as a set of files: entry names carry image ids, whose string order is not the
    # upload order once the session's database has passed a power of ten.
    originals = [n for n in archive.namelist() if n.startswith("originals/")]
    assert sorted(archive.read(name) for name in originals) == sorted(sent)
    assert image_files(s3_client.settings.data_dir) == []


async def test_repeated_bytes_answer_200_and_lost_objects_are_stored_again(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    http = s3_client.http
    room = await new_room(http)
    photo = make_image_bytes("jpeg", size=(640, 480))
    first = await post_image(http, room, photo)
    assert first.status_code == 201
    assert (await post_image(http, room, photo)).status_code == 200
    key = storage_key(first.json())
    s3_bucket.server.client().delete_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{key}/thumb.jpg")
    again = await post_image(http, room, photo)
    assert again.status_code == 201, "an image whose objects are gone is stored anew"
    assert storage_key(again.json()) != key
    assert not [name for name in s3_bucket.object_keys() if f"/{key}/" in name]


async def test_a_refused_upload_leaves_no_object_and_no_file(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    http = s3_client.http
    room = await new_room(http)
    truncated = make_image_bytes("jpeg", size=(2000, 1500))[:-20_000]
    for data in (
        b"not an image at all" * 1000,
        truncated,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 2_000_000,
    ):
        refused = await post_image(http, room, data)
        assert refused.status_code in (415, 422), refused.text
    assert s3_bucket.object_keys() == []
    assert image_files(s3_client.settings.data_dir) == []


async def test_redirects_are_cached_no_longer_than_the_presigned_url_lives(
    make_settings: SettingsFactory, s3_bucket: Bucket
) -> None:
    settings = make_settings(**s3_bucket.settings(PREFIX), media_url_seconds=120)
    async for client in _app_client(settings):
        room = await new_room(client.http)
        image = (await post_image(client.http, room, make_image_bytes("jpeg"))).json()
        redirect = await client.http.get(image["url"])
        assert redirect.headers["cache-control"] == "private, max-age=60"
        assert "X-Amz-Expires=120" in redirect.headers["location"]
        assert (await client.http.get(f"/media/{storage_key(image)}/original")).status_code == 404


async def test_media_base_url_redirects_renditions_to_it(
    make_settings: SettingsFactory, s3_bucket: Bucket
) -> None:
    base = "https://cdn.example.org/wedding-photos"
    settings = make_settings(**s3_bucket.settings(PREFIX), media_base_url=base + "/")
    async for client in _app_client(settings):
        room = await new_room(client.http)
        image = (await post_image(client.http, room, make_image_bytes("jpeg"))).json()
        redirect = await client.http.get(image["thumb_url"])
        assert redirect.status_code == 302
        assert redirect.headers["location"] == f"{base}/{storage_key(image)}/thumb.jpg"
        # No presigned lifetime: the rendition's own max-age.
        assert redirect.headers["cache-control"] == "private, max-age=300"


@pytest.fixture
def private_server() -> Iterator[MotoServer]:
    """A moto server of this test's own, which the test stops and starts again."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        if server._server is None:
            server.start()
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_settings(
    request: pytest.FixtureRequest, make_settings: SettingsFactory, private_server: MotoServer
) -> Iterator[tuple[Settings, Bucket]]:
    for bucket in new_bucket(private_server):
        overrides: dict[str, Any] = bucket.settings(PREFIX)
        if request.param == "postgresql":
            overrides["database_url"] = request.getfixturevalue("pg_database_url")
        yield make_settings(**overrides), bucket


async def test_store_down_answers_503_stores_nothing_and_recovers(
    outage_settings: tuple[Settings, Bucket], private_server: MotoServer
) -> None:
    settings, bucket = outage_settings
    async for client in _app_client(settings):
        http = client.http
        room = await new_room(http)
        before = await post_image(http, room, make_image_bytes("jpeg", size=(640, 480)))
        assert before.status_code == 201
        assert (await http.get("/readyz")).json()["checks"]["storage"] == "ok"

        private_server.stop()
        down = await post_image(http, room, make_image_bytes("png", size=(300, 200)))
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "5"
        assert down.json()["error"]["code"] == "busy"
        rendition = await http.get(before.json()["url"])
        assert rendition.status_code == 503 and "retry-after" in rendition.headers
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["storage"] == "unavailable: StoreUnavailable"
        assert image_files(settings.data_dir) == []

        # A replica starting while the store is down starts (its sweep waits for the store).
        async for late in _app_client(settings):
            assert (await late.http.get("/readyz")).json()["checks"]["storage"] != "ok"

        private_server.start()
        listed = await http.get(f"/api/rooms/{room['token']}/images")
        assert [item["id"] for item in listed.json()["items"]] == [before.json()["id"]]
        assert len(bucket.object_keys()) == 3, "nothing of the refused upload reached the bucket"
        after = await post_image(http, room, make_image_bytes("png", size=(300, 200)))
        assert after.status_code == 201, after.text
        assert follow(await http.get(after.json()["thumb_url"])).status_code == 200
        assert (await http.get("/readyz")).json()["status"] == "ok"


async def test_sweep_removes_old_orphans_only(tmp_path: Path, s3_bucket: Bucket) -> None:
    settings = Settings(data_dir=tmp_path / "data", **s3_bucket.settings(PREFIX))
    offset = [0.0]
    media = ObjectMedia(
        open_object_store(settings),
        LocalImageStore(tmp_path / "scratch"),
        RenditionPool(workers=1, queue_limit=2, on_demand=True),
        url_seconds=600,
        clock=lambda: time.time() + offset[0],
    )
    await media.start()
    try:
        kept = await media.stage_and_render(make_image_bytes("jpeg"), SPEC)
        orphan = await media.stage_and_render(make_image_bytes("png"), SPEC)
        client = s3_bucket.server.client()
        client.put_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/notes.txt", Body=b"not ours")
        committed = committed_of([kept.key])
        # Young: an upload in flight on a live replica, whose row is not committed yet.
        assert await media.sweep(committed) == 0
        offset[0] = ORPHAN_GRACE_SECONDS + 1
        assert await media.sweep(committed) == 1
        names = s3_bucket.object_keys()
        assert f"{PREFIX}/notes.txt" in names
        assert any(f"/{kept.key}/" in name for name in names)
        assert not any(f"/{orphan.key}/" in name for name in names)
        # recover sweeps at start-up, then at most once a sweep period.
        young = await media.stage_and_render(make_image_bytes("gif"), SPEC)
        offset[0] += ORPHAN_GRACE_SECONDS + 1
        assert await media.recover(committed) == (0, 1)
        assert await media.recover(committed) == (0, 0)
        assert not any(f"/{young.key}/" in name for name in s3_bucket.object_keys())
        assert image_files(tmp_path / "scratch") == []
    finally:
        await media.close()


async def test_sweep_removes_the_bytes_of_finished_direct_uploads(
    tmp_path: Path, s3_bucket: Bucket
) -> None:
    """A direct upload's bytes are deleted after its row is finished; a store that stopped
    answering then leaves them, and the sweep removes them once old, but never those of an
    upload still issued or processing."""
    settings = Settings(data_dir=tmp_path / "data", **s3_bucket.settings(PREFIX))
    offset = [0.0]
    media = ObjectMedia(
        open_object_store(settings),
        LocalImageStore(tmp_path / "scratch"),
        RenditionPool(workers=1, queue_limit=2, on_demand=True),
        url_seconds=600,
        clock=lambda: time.time() + offset[0],
    )
    finished, pending = "finished-upload-0123456789", "pending-upload-0123456789"
    client = s3_bucket.server.client()
    for upload_id in (finished, pending):
        client.put_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/direct/{upload_id}", Body=b"x")
    asked: list[list[str]] = []

    async def still_pending(ids: Iterable[str]) -> set[str]:
        asked.append(sorted(ids))
        return {pending} & set(asked[-1])

    await media.start()
    try:
        nothing = committed_of(())
        assert await media.sweep(nothing, pending_uploads=still_pending) == 0  # young
        offset[0] = ORPHAN_GRACE_SECONDS + 1
        assert await media.sweep(nothing) == 0  # not asked: left alone
        assert len(s3_bucket.object_keys()) == 2
        assert await media.sweep(nothing, pending_uploads=still_pending) == 1
        assert asked == [sorted((finished, pending))]
        assert s3_bucket.object_keys() == [f"{PREFIX}/direct/{pending}"]
    finally:
        await media.close()


def test_storage_urls_are_parsed_and_refused_clearly(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path)
    assert local.storage.folder == tmp_path
    assert Settings(storage_url=str(tmp_path / "photos")).storage.folder == tmp_path / "photos"
    s3 = Settings(
        storage_url="s3://bucket/a/b/",
        AWS_ACCESS_KEY_ID="key-id",  # type: ignore[call-arg]
        AWS_SECRET_ACCESS_KEY="s3cr3t",
    )
    assert (s3.storage.bucket, s3.storage.prefix) == ("bucket", "a/b")
    assert "s3cr3t" not in repr(s3) and "s3cr3t" not in str(s3.model_dump())
    assert isinstance(open_object_store(s3), S3Store)
    with pytest.raises(ValueError, match=r"s3://bucket: .*Missing AccessKeyId"):
        open_object_store(Settings(storage_url="s3://bucket", AWS_SECRET_ACCESS_KEY="x"))  # type: ignore[call-arg]
    gs = Settings(storage_url="gs://photos-bucket/wedding")
    assert gs.storage.url == "gs://photos-bucket/wedding"
    assert isinstance(open_object_store(gs), GCSStore)
    az = Settings(storage_url="az://container/prefix")
    assert (az.storage.scheme, az.storage.bucket, az.storage.prefix) == (
        "az",
        "container",
        "prefix",
    )
    azurite = Settings(
        storage_url="az://container",
        AZURE_STORAGE_ACCOUNT_NAME="devstoreaccount1",  # type: ignore[call-arg]
        AZURE_STORAGE_ACCOUNT_KEY="czNjcjN0",
        AZURE_STORAGE_ENDPOINT="http://127.0.0.1:10000/devstoreaccount1/",
    )
    assert "czNjcjN0" not in repr(azurite) and "czNjcjN0" not in str(azurite.model_dump())
    azure_store = open_object_store(azurite)
    assert isinstance(azure_store, AzureStore)
    assert azure_store.config["endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert browser_origins(azure_store) == ("http://127.0.0.1:10000",)
    with pytest.raises(ValidationError, match="absolute http"):
        Settings(storage_url="az://container", AZURE_STORAGE_ENDPOINT="127.0.0.1:10000")  # type: ignore[call-arg]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
        env.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
        assert isinstance(open_object_store(az), AzureStore)
    for bad, says in (
        ("ftp://host/x", "unknown scheme 'ftp'"),
        ("s3://", "no bucket"),
        ("s3://key:secret@bucket", "credentials do not go in the URL"),
        ("s3://bucket?region=x", "no query"),
        ("s3://bucket/a//b", "empty segment"),
    ):
        with pytest.raises(ValidationError, match=says):
            Settings(storage_url=bad)
    with pytest.raises(ValidationError, match="absolute http"):
        Settings(storage_url="s3://bucket", media_base_url="cdn.example.org")
    with pytest.raises(ValidationError, match="needs object storage"):
        Settings(media_base_url="https://cdn.example.org")


async def test_large_original_goes_up_in_parts(tmp_path: Path, s3_bucket: Bucket) -> None:
    """A body over the 8 MiB part size is written as a multipart upload, and read back whole."""
    settings = Settings(data_dir=tmp_path / "data", **s3_bucket.settings(PREFIX))
    media = ObjectMedia(
        open_object_store(settings),
        LocalImageStore(tmp_path / "scratch"),
        RenditionPool(workers=1, queue_limit=2, on_demand=True),
        url_seconds=600,
    )
    big = Image.effect_noise((2400, 2000), 80).convert("RGB")
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) > 9 * 1024 * 1024
    await media.start()
    try:
        spilled = media.new_upload_path()
        spilled.write_bytes(data)
        staged = await media.stage_and_render(spilled, SPEC)
        head = s3_bucket.server.client().head_object(
            Bucket=s3_bucket.name, Key=f"{PREFIX}/{staged.key}/original"
        )
        assert head["ContentLength"] == len(data)
        assert head["ETag"].strip('"').endswith("-2"), head["ETag"]  # two parts
        original = await media.original(staged.key, "image/png")
        assert original is not None and original.redirect is not None
        async with httpx.AsyncClient() as http:
            assert (await http.get(original.redirect)).content == data
        assert urlsplit(original.redirect).query.count("X-Amz-Signature=") == 1
        assert image_files(tmp_path / "scratch") == []
    finally:
        await media.close()


async def test_a_folder_path_keeps_the_files_there(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """``IMAGESHARK_STORAGE_URL=<folder>``: the local layout in that folder, the database
    still in the data folder."""
    folder = tmp_path / "photo-files"
    settings = make_settings(storage_url=str(folder))
    async for client in _app_client(settings):
        room = await new_room(client.http)
        image = (await post_image(client.http, room, make_image_bytes("jpeg"))).json()
        served = await client.http.get(image["thumb_url"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        key = storage_key(image)
        assert sorted(p.name for p in (folder / "media" / key).iterdir()) == [
            "display.jpg",
            "original",
            "thumb.jpg",
        ]
        assert not (settings.data_dir / "media").exists()
        assert (settings.data_dir / "imageshark.db").exists()


async def _ask_upload(
    http: httpx.AsyncClient, room: dict[str, Any], declared_size: int
) -> dict[str, Any]:
    declared = {"filename": "p.jpg", "content_type": "image/jpeg", "size": declared_size}
    asked = await http.post(f"/api/rooms/{room['token']}/uploads", json=declared)
    assert asked.status_code == 201, asked.text
    upload: dict[str, Any] = asked.json()
    assert upload["method"] == "POST"
    assert upload["url"].startswith("http://127.0.0.1:") and "/api/" not in upload["url"]
    return upload


async def _send_form(upload: dict[str, Any], data: bytes) -> httpx.Response:
    """POST ``data`` to the store as the upload's HTML form: its fields, then ``file``."""
    async with httpx.AsyncClient() as store:
        return await store.post(
            upload["url"], data=upload["fields"], files={"file": ("p.jpg", data, "image/jpeg")}
        )


def _policy(upload: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(upload["fields"]["policy"]))
    return policy


async def _direct_upload(
    http: httpx.AsyncClient, room: dict[str, Any], data: bytes, declared_size: int
) -> dict[str, Any]:
    """Ask for a direct upload of ``declared_size`` bytes, POST ``data`` straight to the
    store as told (no service in between), complete it and wait for its end state."""
    token = room["token"]
    upload = await _ask_upload(http, room, declared_size)
    sent = await _send_form(upload, data)
    assert sent.status_code == 204, sent.text
    completed = await http.post(f"/api/rooms/{token}/uploads/{upload['upload_id']}/complete")
    assert completed.status_code == 202, completed.text

    async def settled() -> dict[str, Any] | None:
        state = (await http.get(f"/api/rooms/{token}/uploads/{upload['upload_id']}")).json()
        return state if state["status"] != "processing" else None

    state: dict[str, Any] = await poll_until(settled, deadline=60, what="direct upload settled")
    return state


async def test_direct_upload_goes_straight_to_the_bucket_and_is_served_from_it(
    s3_client: AppClient, s3_bucket: Bucket, phone_photo: bytes
) -> None:
    http = s3_client.http
    room = await new_room(http)
    state = await _direct_upload(http, room, phone_photo, len(phone_photo))
    assert state["status"] == "done", state
    image = state["image"]
    key = storage_key(image)
    # The upload's own object is gone once processed; the image's objects are in place.
    assert s3_bucket.object_keys() == [
        f"{PREFIX}/{key}/display.jpg",
        f"{PREFIX}/{key}/original",
        f"{PREFIX}/{key}/thumb.jpg",
    ]
    served = follow(await http.get(image["url"]))
    assert_upright(
        assert_clean_jpeg(served.content, (image["width"], image["height"])),
        reference_photo("coffee", (4000, 3000)),
    )
    assert image_files(s3_client.settings.data_dir) == []


async def test_direct_upload_larger_than_declared_fails_and_its_object_is_deleted(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    """The policy's ``content-length-range`` would make S3 refuse the body, but moto (5.x)
    does not check a POST policy's conditions at all: the object lands, and the processing
    fails the upload and deletes it, as for a presigned PUT (GCS, Azure)."""
    http = s3_client.http
    room = await new_room(http)
    photo = make_image_bytes("JPEG", size=(640, 480))
    state = await _direct_upload(http, room, photo, len(photo) - 100)
    assert state["status"] == "failed", state
    assert state["error"]["code"] == "file_too_large"
    # The failure is recorded first, then the bytes go (a database fault keeps both).
    await poll_until(lambda: s3_bucket.object_keys() == [], deadline=30, what="object deleted")
    assert image_files(s3_client.settings.data_dir) == []


async def test_direct_upload_policy_binds_key_type_size_and_expiry(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    """The presigned POST's policy (what S3 checks; moto does not) names this upload's key
    exactly, the declared type, 1..declared bytes, and expires when the upload does."""
    room = await new_room(s3_client.http)
    upload = await _ask_upload(s3_client.http, room, 12345)
    fields = upload["fields"]
    key = f"{PREFIX}/direct/{upload['upload_id']}"
    assert fields["key"] == key
    assert fields["Content-Type"] == "image/jpeg"
    assert urlsplit(upload["url"]).path == f"/{s3_bucket.name}"
    policy = _policy(upload)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 12345] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert {"key": key} in conditions
    assert {"bucket": s3_bucket.name} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    upload_expires = datetime.fromisoformat(upload["expires_at"].replace("Z", "+00:00"))
    # Never later than the upload (whole seconds, rounded down), at most 2 s earlier.
    assert 0 <= (upload_expires - expires).total_seconds() <= 2


async def test_direct_upload_sent_to_another_key_is_not_received(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    """A form whose ``key`` was changed (S3 refuses it: the signature covers the key; moto
    stores it) never counts as this upload: ``complete`` answers 409 upload_not_received."""
    http = s3_client.http
    room = await new_room(http)
    photo = make_image_bytes("JPEG", size=(64, 48))
    upload = await _ask_upload(http, room, len(photo))
    upload["fields"] = {**upload["fields"], "key": f"{PREFIX}/direct/someone-else"}
    await _send_form(upload, photo)
    completed = await http.post(
        f"/api/rooms/{room['token']}/uploads/{upload['upload_id']}/complete"
    )
    assert completed.status_code == 409, completed.text
    assert completed.json()["error"]["code"] == "upload_not_received"


async def test_pages_csp_allows_the_store_origin_only(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    """The guest page connects to the bucket (direct uploads) and loads images from it
    (presigned redirects): its CSP names the store's origin, from the settings, and no
    wildcard."""
    room = await new_room(s3_client.http)
    page = await s3_client.http.get(f"/r/{room['token']}")
    assert page.status_code == 200, page.text
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    origin = s3_bucket.server.endpoint
    assert origin in policy["connect-src"].split()
    assert origin in policy["img-src"].split()
    assert "*" not in page.headers["content-security-policy"]


async def _sweep_uploads(settings: Settings) -> int:
    """Run one sweep of expired direct uploads on a replica of ``settings`` of its own."""
    replica = build_replica(settings, renditions_on_demand=True)
    await replica.start()
    try:
        return await replica.uploads.sweep()
    finally:
        await replica.stop()


async def test_removing_a_rooms_images_and_uploads_leaves_none_of_its_objects(
    s3_client: AppClient, s3_bucket: Bucket
) -> None:
    """Everything the local folder removes files for removes the objects too: a deleted
    image (with its full-size rendering), a rejected pending one, a direct upload once
    processed, and one never completed once it expired and was swept. Another room's
    objects stay."""
    http = s3_client.http
    other = await new_room(http)
    kept = await post_image(http, other, make_image_bytes("gif", size=(320, 240)))
    assert kept.status_code == 201, kept.text
    kept_keys = [name for name in s3_bucket.object_keys() if storage_key(kept.json()) in name]
    assert len(kept_keys) == 3

    room = await new_room(http, moderation="approve")
    token = room["token"]
    shown = (await post_image(http, room, make_image_bytes("jpeg", size=(640, 480)))).json()
    approved = await http.post(
        f"/api/rooms/{token}/images/{shown['id']}/approve", headers=host(room)
    )
    assert approved.status_code == 200, approved.text
    full = await http.get(f"/api/rooms/{token}/images/{shown['id']}/download", headers=host(room))
    assert follow(full).status_code == 200
    assert f"{PREFIX}/{storage_key(shown)}/full.jpg" in s3_bucket.object_keys()
    refused = (await post_image(http, room, make_image_bytes("png", size=(640, 480)))).json()
    direct = await _direct_upload(http, room, make_image_bytes("webp", size=(500, 400)), 10**6)
    assert direct["status"] == "done", direct
    abandoned = await _ask_upload(http, room, 10**6)
    assert (
        await _send_form(abandoned, make_image_bytes("jpeg", size=(300, 200)))
    ).status_code == 204
    assert f"{PREFIX}/direct/{abandoned['upload_id']}" in s3_bucket.object_keys()
    assert len(s3_bucket.object_keys()) == 3 + 4 + 3 + 3 + 1

    rejected = await http.post(
        f"/api/rooms/{token}/images/{refused['id']}/reject", headers=host(room)
    )
    assert rejected.status_code == 204, rejected.text
    for image_id in (shown["id"], direct["image"]["id"]):
        deleted = await http.delete(f"/api/rooms/{token}/images/{image_id}", headers=host(room))
        assert deleted.status_code == 204, deleted.text
    await set_expiry(
        s3_client.settings, abandoned["upload_id"], datetime.now(UTC) - timedelta(seconds=1)
    )
    assert await _sweep_uploads(s3_client.settings) >= 1  # PostgreSQL: other tests' too
    assert s3_bucket.object_keys() == kept_keys


async def test_an_expired_upload_swept_while_the_store_is_down_is_swept_again(
    make_settings: SettingsFactory, private_server: MotoServer
) -> None:
    """The sweep deletes an expired upload's bytes before its row: with the store down the
    row stays, and the next sweep, with the store back, removes both."""
    for bucket in new_bucket(private_server):
        settings = make_settings(**bucket.settings(PREFIX))
        async for client in _app_client(settings):
            room = await new_room(client.http)
            upload = await _ask_upload(client.http, room, 10**6)
            sent = await _send_form(upload, make_image_bytes("jpeg", size=(300, 200)))
            assert sent.status_code == 204, sent.text
        await set_expiry(settings, upload["upload_id"], datetime.now(UTC) - timedelta(seconds=1))
        replica = build_replica(settings, renditions_on_demand=True)
        await replica.start()
        try:
            private_server.stop()
            with pytest.raises(StoreUnavailable):
                await replica.uploads.sweep()
            private_server.start()
            assert bucket.object_keys() == [f"{PREFIX}/direct/{upload['upload_id']}"]
            assert await replica.uploads.sweep() == 1
            assert bucket.object_keys() == []
        finally:
            await replica.stop()
