"""Images over HTTP: uploads of real phone photos, renditions, paging, deletion, bad input."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.leftovers import Snapshot, media_dirs
from tests.photos import (
    HOSTILE_EXPECTED_STATUS,
    assert_upright,
    hostile_corpus,
    make_image_bytes,
    make_phone_jpeg,
    reference_photo,
)
from tests.web.test_rooms import create_room
from web.storage import LocalImageStore


async def upload(
    client: AppClient,
    token: str,
    data: bytes,
    *,
    filename: str = "IMG_0001.JPG",
    caption: str | None = None,
    headers: dict[str, str] | None = None,
) -> object:
    fields = {"caption": caption} if caption is not None else None
    return await client.http.post(
        f"/api/rooms/{token}/images",
        files={"file": (filename, data, "image/jpeg")},
        data=fields,
        headers=headers,
    )


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 12 MP phone JPEG stored sideways (EXIF orientation 6) with GPS tags."""
    path = tmp_path_factory.mktemp("photos") / "IMG_0001.JPG"
    return make_phone_jpeg(path, orientation=6, size=(4000, 3000), gps=True).read_bytes()


async def test_upload_phone_photo_gives_upright_clean_renditions(
    backend_client: AppClient, phone_photo: bytes
) -> None:
    room = await create_room(backend_client)
    response = await upload(backend_client, room["token"], phone_photo, caption=" First dance ")
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["caption"] == "First dance"
    assert isinstance(image["id"], int) and image["seq"] == 1
    assert (image["width"], image["height"]) == (1600, 1200)
    assert max(image["thumb_width"], image["thumb_height"]) == 400

    for url_field, size_fields in (
        ("url", ("width", "height")),
        ("thumb_url", ("thumb_width", "thumb_height")),
    ):
        served = await backend_client.http.get(image[url_field])
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["cache-control"] == "private, max-age=300"
        picture = Image.open(io.BytesIO(served.content))
        assert picture.size == (image[size_fields[0]], image[size_fields[1]])
        assert_upright(picture, reference_photo("coffee", (4000, 3000)))
        assert not picture.getexif(), "EXIF left in a rendition"
        for marker in (b"Exif", b"GPS", b"xmpmeta", b"Apple", b"Canon"):
            assert marker not in served.content, marker


async def test_original_is_private_and_downloadable_by_host(
    client: AppClient, phone_photo: bytes
) -> None:
    room = await create_room(client)
    image = (await upload(client, room["token"], phone_photo)).json()
    key = image["url"].split("/")[2]
    assert (await client.http.get(f"/media/{key}/original")).status_code == 404
    url = f"/api/rooms/{room['token']}/images/{image['id']}/original"
    assert (await client.http.get(url)).status_code == 401
    original = await client.http.get(url, headers={"Authorization": f"Bearer {room['host_key']}"})
    # The phone photo carries GPS, blanked in place at ingest: same length, same pixels.
    assert original.status_code == 200 and len(original.content) == len(phone_photo)
    assert original.content != phone_photo
    with (
        Image.open(io.BytesIO(original.content)) as got,
        Image.open(io.BytesIO(phone_photo)) as sent,
    ):
        assert got.tobytes() == sent.tobytes()
        assert got.getexif().get_ifd(0x8825) == {} and sent.getexif().get_ifd(0x8825) != {}


async def test_same_bytes_twice_return_the_same_image(
    backend_client: AppClient, phone_photo: bytes
) -> None:
    room = await create_room(backend_client)
    first = await upload(backend_client, room["token"], phone_photo)
    again = await upload(backend_client, room["token"], phone_photo, filename="retry.jpg")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    listing = (await backend_client.http.get(f"/api/rooms/{room['token']}/images")).json()
    assert [item["id"] for item in listing["items"]] == [first.json()["id"]]
    assert len(media_dirs(backend_client.settings.data_dir)) == 1


async def test_same_bytes_again_repair_an_image_whose_files_are_gone(
    backend_client: AppClient,
) -> None:
    room = await create_room(backend_client)
    token, host = room["token"], {"Authorization": f"Bearer {room['host_key']}"}
    photo = make_image_bytes("jpeg", name="coffee", size=(320, 240))
    broken = (await upload(backend_client, token, photo)).json()
    shutil.rmtree(backend_client.settings.data_dir / "media" / broken["url"].split("/")[2])

    again = await upload(backend_client, token, photo, filename="retry.jpg")
    assert again.status_code == 201, again.text
    image = again.json()
    assert image["id"] != broken["id"]
    original = f"/api/rooms/{token}/images/{image['id']}/original"
    for url in (image["url"], image["thumb_url"], original):
        assert (await backend_client.http.get(url, headers=host)).status_code == 200, url
    listing = (await backend_client.http.get(f"/api/rooms/{token}/images")).json()
    assert [item["id"] for item in listing["items"]] == [image["id"]]
    events = (await backend_client.http.get(f"/api/rooms/{token}/events")).json()["items"]
    assert [(event["kind"], event["payload"]["id"]) for event in events] == [
        ("image_added", broken["id"]),
        ("image_removed", broken["id"]),
        ("image_added", image["id"]),
    ]


async def test_paging_in_upload_order(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    other = await create_room(backend_client, "other room")
    uploaded = []
    for index, name in enumerate(("coffee", "chelsea", "astronaut", "rocket", "coffee")):
        data = make_image_bytes("png" if index % 2 else "jpeg", size=(320 + index, 240), name=name)
        response = await upload(backend_client, room["token"], data, caption=f"#{index}")
        assert response.status_code == 201, response.text
        uploaded.append(response.json())
        await upload(backend_client, other["token"], data)
    ids = [image["id"] for image in uploaded]
    assert ids == sorted(ids)
    assert [image["seq"] for image in uploaded] == [1, 2, 3, 4, 5]

    seen, after = [], None
    while True:
        params = {"limit": "2"} | ({"after": str(after)} if after is not None else {})
        page = (
            await backend_client.http.get(f"/api/rooms/{room['token']}/images", params=params)
        ).json()
        seen += page["items"]
        after = page["next_after"]
        if after is None:
            break
    assert seen == uploaded
    for bad in ({"limit": "0"}, {"limit": "201"}, {"after": "-1"}, {"after": "x"}):
        response = await backend_client.http.get(f"/api/rooms/{room['token']}/images", params=bad)
        assert response.status_code == 422, bad


async def test_delete_by_host_and_by_uploader_only(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    token = room["token"]
    guest = (
        await backend_client.http.post(f"/api/rooms/{token}/participants", json={"name": "Guest"})
    ).json()
    backend_client.http.cookies.clear()  # a second person, not the same one joining again
    stranger = (
        await backend_client.http.post(
            f"/api/rooms/{token}/participants", json={"name": "Stranger"}
        )
    ).json()
    backend_client.http.cookies.clear()
    mine = (
        await upload(
            backend_client,
            token,
            make_image_bytes("jpeg", name="chelsea"),
            headers={"X-Participant-Key": guest["participant_key"]},
        )
    ).json()
    assert mine["uploader_name"] == "Guest" and mine["participant_id"] == guest["id"]
    theirs = (await upload(backend_client, token, make_image_bytes("png"))).json()
    assert theirs["uploader_name"] is None

    url = f"/api/rooms/{token}/images/{mine['id']}"
    assert (await backend_client.http.delete(url)).status_code == 401
    as_stranger = await backend_client.http.delete(
        url, headers={"X-Participant-Key": stranger["participant_key"]}
    )
    assert as_stranger.status_code == 403
    other_host = (await create_room(backend_client, "x"))["host_key"]
    assert (
        await backend_client.http.delete(url, headers={"Authorization": f"Bearer {other_host}"})
    ).status_code == 403
    as_uploader = await backend_client.http.delete(
        url, headers={"X-Participant-Key": guest["participant_key"]}
    )
    assert as_uploader.status_code == 204
    assert (await backend_client.http.get(mine["url"])).status_code == 404

    as_host = await backend_client.http.delete(
        f"/api/rooms/{token}/images/{theirs['id']}",
        headers={"Authorization": f"Bearer {room['host_key']}"},
    )
    assert as_host.status_code == 204
    assert (
        await backend_client.http.delete(
            f"/api/rooms/{token}/images/{theirs['id']}",
            headers={"Authorization": f"Bearer {room['host_key']}"},
        )
    ).status_code == 404
    listing = (await backend_client.http.get(f"/api/rooms/{token}/images")).json()
    assert listing["items"] == []
    assert media_dirs(backend_client.settings.data_dir) == []


async def test_bad_uploads_get_clear_errors_and_leave_nothing(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    kept = await upload(backend_client, room["token"], make_image_bytes("jpeg"))
    assert kept.status_code == 201
    before = await Snapshot.take(backend_client.settings)
    expected = dict(HOSTILE_EXPECTED_STATUS, **{"empty.jpg": 400})
    for name, data in hostile_corpus().items():
        response = await upload(backend_client, room["token"], data, filename=name)
        assert response.status_code == expected[name], (name, response.text)
        error = response.json()["error"]
        assert error["code"] and error["message"], name
    not_multipart = await backend_client.http.post(
        f"/api/rooms/{room['token']}/images",
        content=b"\xff\xd8\xff",
        headers={"content-type": "image/jpeg"},
    )
    assert not_multipart.status_code == 415
    no_file = await backend_client.http.post(
        f"/api/rooms/{room['token']}/images", files={"caption": (None, "hi")}
    )
    assert no_file.status_code == 400
    unknown = await upload(backend_client, "C" * 24, make_image_bytes("jpeg", name="rocket"))
    assert unknown.status_code == 404
    await before.assert_unchanged(backend_client.settings)
    listing = (await backend_client.http.get(f"/api/rooms/{room['token']}/images")).json()
    assert [item["id"] for item in listing["items"]] == [kept.json()["id"]]


def _multipart_stream(
    boundary: str, chunks: int, chunk: bytes, pulled: list[int]
) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        for _ in range(chunks):
            pulled.append(1)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return body()


async def test_oversize_is_413_while_streaming(make_settings: SettingsFactory) -> None:
    limit = 1024 * 1024
    async for client in _app_client(make_settings(max_upload_bytes=limit)):
        room = await create_room(client)
        before = await Snapshot.take(client.settings)
        url = f"/api/rooms/{room['token']}/images"
        headers = {"content-type": "multipart/form-data; boundary=XyZ"}
        chunk = b"\xff" * 65536

        pulled: list[int] = []  # no Content-Length: counted while streaming
        response = await client.http.post(
            url, content=_multipart_stream("XyZ", 200, chunk, pulled), headers=headers
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "file_too_large"
        assert len(pulled) < 200 // 2, "the server read on after the limit"

        pulled = []  # a declared Content-Length over the limit: refused before reading
        declared = dict(headers, **{"content-length": str(200 * 65536 + 200)})
        response = await client.http.post(
            url, content=_multipart_stream("XyZ", 200, chunk, pulled), headers=declared
        )
        assert response.status_code == 413
        assert pulled == []
        await before.assert_unchanged(client.settings)


async def test_caption_limits(client: AppClient) -> None:
    room = await create_room(client)
    too_long = await upload(client, room["token"], make_image_bytes("jpeg"), caption="x" * 501)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_caption"


async def test_interrupted_upload_is_recovered_at_start(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    (settings.data_dir / "uploads").mkdir(parents=True)
    (settings.data_dir / "staging" / "orphanKey_0123456789").mkdir(parents=True)
    (settings.data_dir / "staging" / "orphanKey_0123456789" / "display.jpg").write_bytes(b"x")
    (settings.data_dir / "uploads" / "half.part").write_bytes(b"partial")
    (settings.data_dir / "uploads" / "in-flight.part").write_bytes(b"another replica's")
    long_ago = time.time() - 2 * 3600
    for path in (
        settings.data_dir / "staging" / "orphanKey_0123456789",
        settings.data_dir / "uploads" / "half.part",
    ):
        os.utime(path, (long_ago, long_ago))
    async for client in _app_client(settings):
        # Old leftovers are removed; a fresh file may be another replica's upload in flight.
        uploads = {p.name for p in (settings.data_dir / "uploads").iterdir() if p.is_file()}
        assert uploads == {"in-flight.part"}
        assert [p for p in (settings.data_dir / "staging").rglob("*") if p.is_file()] == []
        assert not (settings.data_dir / "staging" / "orphanKey_0123456789").exists()
        assert (await client.http.get("/healthz")).status_code == 200


async def test_ids_of_deleted_images_are_never_reused(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    token = room["token"]
    first = (await upload(backend_client, token, make_image_bytes("jpeg", size=(300, 200)))).json()
    newest = (await upload(backend_client, token, make_image_bytes("jpeg", size=(301, 200)))).json()
    deleted = await backend_client.http.delete(
        f"/api/rooms/{token}/images/{newest['id']}",
        headers={"Authorization": f"Bearer {room['host_key']}"},
    )
    assert deleted.status_code == 204
    after = (await upload(backend_client, token, make_image_bytes("jpeg", size=(302, 200)))).json()
    assert after["id"] > newest["id"] > first["id"]


async def test_media_is_cached_privately_and_gone_after_deletion(backend_client: AppClient) -> None:
    room = await create_room(backend_client)
    image = (await upload(backend_client, room["token"], make_image_bytes("jpeg"))).json()
    for url in (image["url"], image["thumb_url"]):
        served = await backend_client.http.get(url)
        cache = served.headers["cache-control"]
        assert served.status_code == 200 and cache == "private, max-age=300"
        assert "public" not in cache and "immutable" not in cache
    deleted = await backend_client.http.delete(
        f"/api/rooms/{room['token']}/images/{image['id']}",
        headers={"Authorization": f"Bearer {room['host_key']}"},
    )
    assert deleted.status_code == 204
    for url in (image["url"], image["thumb_url"]):
        gone = await backend_client.http.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


async def test_media_max_age_zero_revalidates(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(media_max_age_seconds=0)):
        room = await create_room(client)
        image = (await upload(client, room["token"], make_image_bytes("jpeg"))).json()
        served = await client.http.get(image["thumb_url"])
        assert served.headers["cache-control"] == "private, no-cache"


async def test_renditions_are_served_between_the_commit_and_the_folders_move(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page filling a gap from the event log may see ``image_added`` before the upload's
    folder is moved into ``media/``: its renditions are served from staging meanwhile."""
    committed, release = asyncio.Event(), asyncio.Event()
    publish = LocalImageStore.publish

    async def held_publish(store: LocalImageStore, key: str) -> None:
        committed.set()
        await release.wait()
        await publish(store, key)

    monkeypatch.setattr(LocalImageStore, "publish", held_publish)
    room = await create_room(client)
    sending = asyncio.create_task(
        upload(client, room["token"], make_image_bytes("jpeg", size=(640, 480)))
    )
    await asyncio.wait_for(committed.wait(), 60)
    events = (await client.http.get(f"/api/rooms/{room['token']}/events")).json()["items"]
    [added] = [event for event in events if event["kind"] == "image_added"]
    image = added["payload"]
    early = {}
    for url, width in ((image["url"], image["width"]), (image["thumb_url"], image["thumb_width"])):
        served = await client.http.get(url)
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(served.content)) as rendition:
            assert rendition.width == width
        early[url] = served.content
    release.set()
    assert (await sending).status_code == 201
    for url, content in early.items():
        assert (await client.http.get(url)).content == content
