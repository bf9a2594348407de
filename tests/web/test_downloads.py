"""Downloads over HTTP: the full-resolution JPEG, the host's ZIP archive of originals and
presigned links, on both database backends and, for streaming, over a real server."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import socket
import zipfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from PIL import ExifTags, Image

from tests.conftest import AppClient, SettingsFactory, _app_client, run_server
from tests.photos import assert_upright, make_image_bytes, make_phone_jpeg, reference_photo
from tests.pipeline.test_renditions import assert_clean_jpeg
from web.images.downloads import DownloadLinks
from web.settings import Settings

SECRET = "test-signing-secret-for-downloads"
TITLE = "Anna & Ben's wedding"


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 12 MP phone JPEG stored sideways (EXIF orientation 6) with GPS, XMP and a comment."""
    path = tmp_path_factory.mktemp("photos") / "IMG_0001.JPG"
    return make_phone_jpeg(path, orientation=6, size=(4000, 3000), gps=True).read_bytes()


@pytest.fixture(params=["sqlite", "postgresql"])
def keyed_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Settings on each backend with a known signing key, so tests can make their own links."""
    if request.param == "postgresql":
        pg_url = request.getfixturevalue("pg_database_url")
        return make_settings(secret_key=SECRET, database_url=pg_url)
    return make_settings(secret_key=SECRET)


@pytest.fixture
async def keyed_client(keyed_settings: Settings) -> AsyncIterator[AppClient]:
    """Like ``backend_client``, on ``keyed_settings``."""
    async for client in _app_client(keyed_settings):
        yield client


def host(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


async def new_room(http: httpx.AsyncClient, title: str = TITLE, **settings: Any) -> dict[str, Any]:
    response = await http.post("/api/rooms", json={"title": title, **settings})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def join(http: httpx.AsyncClient, room: dict[str, Any], name: str, **body: Any) -> str:
    response = await http.post(
        f"/api/rooms/{room['token']}/participants", json={"name": name, **body}
    )
    assert response.status_code == 201, response.text
    http.cookies.clear()  # each test names its caller explicitly
    return str(response.json()["participant_key"])


async def upload(
    http: httpx.AsyncClient,
    room: dict[str, Any],
    data: bytes,
    *,
    key: str | None = None,
    caption: str | None = None,
) -> dict[str, Any]:
    response = await http.post(
        f"/api/rooms/{room['token']}/images",
        files={"file": ("photo", data, "application/octet-stream")},
        data={"caption": caption} if caption is not None else None,
        headers={"X-Participant-Key": key} if key else None,
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def media_folder(settings: Any, image: dict[str, Any]) -> Path:
    return Path(settings.data_dir) / "media" / image["url"].split("/")[2]


def disposition_name(header: str) -> str:
    """The file name a browser saves under: ``filename*`` if present, else ``filename``."""
    for part in header.split(";"):
        part = part.strip()
        if part.startswith("filename*=UTF-8''"):
            return unquote(part.removeprefix("filename*=UTF-8''"))
    start = header.index('filename="') + len('filename="')
    return header[start : header.index('"', start)]


# --- full-resolution download -----------------------------------------------------------------


async def test_full_resolution_download_is_upright_clean_and_kept(
    backend_client: AppClient, phone_photo: bytes
) -> None:
    http = backend_client.http
    room = await new_room(http)
    image = await upload(http, room, phone_photo)
    url = f"/api/rooms/{room['token']}/images/{image['id']}/download"

    first = await http.get(url)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    assert first.headers["content-disposition"] == (
        f'attachment; filename="{TITLE}-{image["id"]}.jpg"'
    )
    # Stored 3000x4000 with orientation 6: every pixel, turned upright.
    full = assert_clean_jpeg(first.content, (4000, 3000))
    assert_upright(full, reference_photo("coffee", (4000, 3000)))
    for marker in (b"Exif", b"GPS", b"xmpmeta", b"ICC_PROFILE", b"Shot on an ImageShark"):
        assert marker not in first.content, marker

    kept = media_folder(backend_client.settings, image) / "full.jpg"
    assert kept.read_bytes() == first.content
    made_at = kept.stat().st_mtime_ns
    second = await http.get(url)
    assert second.status_code == 200 and second.content == first.content
    assert kept.stat().st_mtime_ns == made_at  # served from disk, not made again
    assert sorted(p.name for p in kept.parent.iterdir()) == [
        "display.jpg",
        "full.jpg",
        "original",
        "thumb.jpg",
    ]

    # The media route never serves it (it follows the room's access rules instead).
    assert (await http.get(f"/media/{kept.parent.name}/full.jpg")).status_code == 404
    for missing in ("999999", "abc", str(image["id"] + 1)):
        response = await http.get(f"/api/rooms/{room['token']}/images/{missing}/download")
        assert response.status_code == 404, missing
    other = await new_room(http, "other room")
    elsewhere = await http.get(f"/api/rooms/{other['token']}/images/{image['id']}/download")
    assert elsewhere.status_code == 404


async def test_concurrent_first_downloads_get_the_same_whole_file(client: AppClient) -> None:
    room = await new_room(client.http)
    data = make_image_bytes("jpeg", size=(1800, 1200), name="astronaut", orientation=3)
    image = await upload(client.http, room, data)
    url = f"/api/rooms/{room['token']}/images/{image['id']}/download"
    answers = await asyncio.gather(*(client.http.get(url) for _ in range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({answer.content for answer in answers}) == 1
    full = assert_clean_jpeg(answers[0].content, (1800, 1200))
    assert_upright(full, reference_photo("astronaut", (1800, 1200)))
    folder = media_folder(client.settings, image)
    assert sorted(p.name for p in folder.iterdir()) == [
        "display.jpg",
        "full.jpg",
        "original",
        "thumb.jpg",
    ]


async def test_non_ascii_title_uses_rfc_6266_filename_star(client: AppClient) -> None:
    room = await new_room(client.http, 'Hochzeit Müller/Öz "2024" \u202egpj.exe')
    image = await upload(client.http, room, make_image_bytes("png", size=(300, 200)))
    response = await client.http.get(f"/api/rooms/{room['token']}/images/{image['id']}/download")
    assert response.status_code == 200
    header = response.headers["content-disposition"]
    expected = f"Hochzeit Müller_Öz _2024_ gpj.exe-{image['id']}.jpg"
    assert disposition_name(header) == expected
    assert header.startswith(
        f'attachment; filename="Hochzeit Muller_Oz _2024_ gpj.exe-{image["id"]}'
    )
    assert header.isascii()
    assert_clean_jpeg(response.content, (300, 200))


async def test_download_follows_passcode_and_moderation_rules(backend_client: AppClient) -> None:
    http = backend_client.http
    room = await new_room(http, passcode="tulips-42", moderation="approve")
    guest = await join(http, room, "Guest", passcode="tulips-42")
    other_guest = await join(http, room, "Other", passcode="tulips-42")
    pending = await upload(http, room, make_image_bytes("jpeg", name="chelsea"), key=guest)
    assert pending["status"] == "pending"
    url = f"/api/rooms/{room['token']}/images/{pending['id']}/download"

    nobody = await http.get(url)
    assert nobody.status_code == 401 and nobody.json()["error"]["code"] == "passcode_required"
    assert (await http.get(url, headers={"X-Participant-Key": other_guest})).status_code == 404
    assert (await http.get(url, headers={"X-Participant-Key": guest})).status_code == 200
    assert (await http.get(url, headers=host(room))).status_code == 200

    approved = await http.post(
        f"/api/rooms/{room['token']}/images/{pending['id']}/approve", headers=host(room)
    )
    assert approved.status_code == 200, approved.text
    assert (await http.get(url, headers={"X-Participant-Key": other_guest})).status_code == 200
    assert (await http.get(url)).status_code == 401  # still not for strangers


# --- the ZIP archive ---------------------------------------------------------------------------


def read_archive(content: bytes) -> tuple[zipfile.ZipFile, list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    index = archive.read("index.csv").decode("utf-8-sig")
    return archive, list(csv.DictReader(io.StringIO(index)))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_archive_holds_every_approved_original_byte_for_byte(
    backend_client: AppClient, phone_photo: bytes
) -> None:
    http = backend_client.http
    room = await new_room(http)
    ana = await join(http, room, "Ana María")
    sly = await join(http, room, "../../etc/passwd")
    sent = {
        "phone": (phone_photo, ana, '=HYPERLINK("http://evil")'),
        "png": (make_image_bytes("png", size=(640, 480), name="rocket"), sly, 'Ünïcode, "quoted"'),
        "heic": (make_image_bytes("heic", size=(640, 480), name="chelsea"), None, None),
        "webp": (make_image_bytes("webp", size=(500, 500), name="astronaut"), ana, "last"),
    }
    uploaded = {}
    for label, (data, key, caption) in sent.items():
        uploaded[label] = await upload(http, room, data, key=key, caption=caption)
    # A pending image is not part of the archive.
    patched = await http.patch(
        f"/api/rooms/{room['token']}", json={"moderation": "approve"}, headers=host(room)
    )
    assert patched.status_code == 200, patched.text
    pending = await upload(http, room, make_image_bytes("gif", size=(200, 150)), key=ana)
    assert pending["status"] == "pending"

    url = f"/api/rooms/{room['token']}/archive.zip"
    assert (await http.get(url)).status_code == 401
    wrong = await http.get(url, headers=host(await new_room(http, "another")))
    assert wrong.status_code == 403
    response = await http.get(url, headers=host(room))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="{TITLE}.zip"'
    assert response.headers["cache-control"] == "private, no-store"

    archive, rows = read_archive(response.content)
    expected_names = {
        "phone": f"originals/{uploaded['phone']['id']}-Ana María.jpg",
        "png": f"originals/{uploaded['png']['id']}-_.._etc_passwd.png",
        "heic": f"originals/{uploaded['heic']['id']}-guest.heic",
        "webp": f"originals/{uploaded['webp']['id']}-Ana María.webp",
    }
    assert archive.namelist() == [*expected_names.values(), "index.csv"]
    for label, name in expected_names.items():
        if label == "phone":  # its GPS tags blanked in place: same length, same pixels
            stored = archive.read(name)
            assert len(stored) == len(phone_photo) and stored != phone_photo
            assert_same_pixels_no_location(stored, phone_photo)
        else:  # nothing to strip: byte for byte as sent
            assert sha256(archive.read(name)) == sha256(sent[label][0]), label

    assert [row["file"] for row in rows] == list(expected_names.values())
    phone_row = rows[0]
    assert phone_row == {
        "id": str(uploaded["phone"]["id"]),
        "file": expected_names["phone"],
        "uploader": "Ana María",
        "caption": '\'=HYPERLINK("http://evil")',  # never a live formula in a spreadsheet
        "uploaded_at": uploaded["phone"]["created_at"],
        "width": "4000",
        "height": "3000",
        "sha256": sha256(phone_photo),
    }
    assert rows[1]["caption"] == 'Ünïcode, "quoted"'
    assert (rows[2]["uploader"], rows[2]["caption"]) == ("", "")
    assert [row["sha256"] for row in rows] == [sha256(sent[label][0]) for label in sent]


def decoded(data: bytes) -> tuple[tuple[int, int], bytes, Any]:
    """(size, raw pixels as stored, EXIF) of an image file."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.tobytes(), image.getexif()


def assert_same_pixels_no_location(stored: bytes, sent: bytes) -> None:
    """``stored`` has ``sent``'s pixels and capture time, and no GPS tag (EXIF or XMP)."""
    size, pixels, exif = decoded(stored)
    sent_size, sent_pixels, sent_exif = decoded(sent)
    assert size == sent_size and pixels == sent_pixels
    assert dict(sent_exif.get_ifd(ExifTags.IFD.GPSInfo))  # the test photo had a location
    assert dict(exif.get_ifd(ExifTags.IFD.GPSInfo)) == {}
    capture = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    assert (
        capture and capture == sent_exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal]
    )
    assert exif.get(ExifTags.Base.Orientation) == sent_exif.get(ExifTags.Base.Orientation)
    assert b"GPS" not in stored  # XMP's exif:GPS* properties too, where the file had any


def located_photo(kind: str, size: tuple[int, int]) -> bytes:
    """A photo of ``kind`` (``"JPEG"``, ``"HEIF"``, ``"WEBP"``, ``"PNG"``) at ``size`` with EXIF
    DateTimeOriginal, a GPS IFD and an XMP packet with GPS properties."""
    image = make_image_bytes("png", size=size, name="coffee")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:06:13 18:42:07"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.1)})
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        b'exif:GPSLatitude="48,51.4933N" exif:GPSLongitude="2,17.6683E"/></rdf:RDF></x:xmpmeta>'
    )
    out = io.BytesIO()
    with Image.open(io.BytesIO(image)) as picture:
        options: dict[str, Any] = {"exif": exif.tobytes(), "xmp": xmp}
        if kind in ("JPEG", "WEBP", "HEIF"):
            options["quality"] = 90
        picture.convert("RGB").save(out, kind, **options)
    return out.getvalue()


async def test_archive_holds_full_size_originals_with_capture_time_and_no_location(
    backend_client: AppClient,
) -> None:
    http = backend_client.http
    room = await new_room(http)
    assert room["keep_location"] is False and room["downscale_uploads"] is False
    sent = [located_photo("JPEG", (4032, 3024)), located_photo("HEIF", (1200, 900))]
    sent += [located_photo("WEBP", (800, 600)), located_photo("PNG", (640, 480))]
    images = [await upload(http, room, data) for data in sent]
    response = await http.get(f"/api/rooms/{room['token']}/archive.zip", headers=host(room))
    assert response.status_code == 200, response.text
    archive, rows = read_archive(response.content)
    assert [row["id"] for row in rows] == [str(image["id"]) for image in images]
    for row, data in zip(rows, sent, strict=True):
        assert_same_pixels_no_location(archive.read(row["file"]), data)
    # The single original download follows the same rule.
    image = images[0]
    original = await http.get(
        f"/api/rooms/{room['token']}/images/{image['id']}/original", headers=host(room)
    )
    assert original.status_code == 200, original.text
    assert_same_pixels_no_location(original.content, sent[0])


async def test_archive_keeps_location_when_the_host_chose_it(backend_client: AppClient) -> None:
    http = backend_client.http
    room = await new_room(http, keep_location=True)
    assert room["keep_location"] is True
    sent = [located_photo("JPEG", (4000, 3000)), located_photo("HEIF", (640, 480))]
    for data in sent:
        await upload(http, room, data)
    response = await http.get(f"/api/rooms/{room['token']}/archive.zip", headers=host(room))
    archive, rows = read_archive(response.content)
    for row, data in zip(rows, sent, strict=True):
        stored = archive.read(row["file"])
        assert stored == data
        assert dict(decoded(stored)[2].get_ifd(ExifTags.IFD.GPSInfo))


async def test_originals_settings_are_validated_and_shown_to_guests(client: AppClient) -> None:
    http = client.http
    for field in ("downscale_uploads", "keep_location"):
        refused = await http.post("/api/rooms", json={"title": "t", field: "yes"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == f"invalid_{field}"
    room = await new_room(http)
    changed = await http.patch(
        f"/api/rooms/{room['token']}",
        json={"downscale_uploads": True, "keep_location": True},
        headers=host(room),
    )
    assert changed.status_code == 200, changed.text
    public = (await http.get(f"/api/rooms/{room['token']}")).json()
    assert (public["downscale_uploads"], public["keep_location"]) == (True, True)


async def test_archive_of_an_empty_room_has_just_the_index(client: AppClient) -> None:
    room = await new_room(client.http, "empty")
    response = await client.http.get(f"/api/rooms/{room['token']}/archive.zip", headers=host(room))
    assert response.status_code == 200
    archive, rows = read_archive(response.content)
    assert archive.namelist() == ["index.csv"] and rows == []


def _small_receive_buffer() -> httpx.AsyncHTTPTransport:
    # A small receive window: the server can run at most its socket buffer (tcp_wmem, 4 MiB
    # here) ahead of what this client has read.
    return httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)]
    )


async def test_archive_is_streamed_and_survives_a_deletion_midway(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Six ~2.4 MB originals: the last is deleted once the first chunk has arrived, when the
    # server can be at most ~4.5 MB (socket buffers) into the ~14 MB archive.
    photos = [
        make_phone_jpeg(
            tmp_path / f"p{n}.jpg",
            orientation=1 + n % 8,
            name=("coffee", "chelsea", "astronaut", "rocket")[n % 4],
            size=(4000, 3000),
            gps=False,
            grain=8,
        ).read_bytes()
        for n in range(6)
    ]
    async for server in run_server(make_settings()):
        async with httpx.AsyncClient(
            base_url=server.base_url, transport=_small_receive_buffer(), timeout=60
        ) as http:
            # Locations kept: the originals come back byte for byte, as index.csv hashes them.
            room = await new_room(http, "streamed", keep_location=True)
            images = [await upload(http, room, data) for data in photos]
            url = f"/api/rooms/{room['token']}/archive.zip"
            async with http.stream("GET", url, headers=host(room)) as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers
                assert response.headers["transfer-encoding"] == "chunked"
                chunks = response.aiter_raw()
                received = [await anext(chunks)]
                assert received[0].startswith(b"PK\x03\x04")
                deleted = await http.delete(
                    f"/api/rooms/{room['token']}/images/{images[-1]['id']}", headers=host(room)
                )
                assert deleted.status_code == 204
                received += [chunk async for chunk in chunks]
            assert len(received) > 2
            archive, rows = read_archive(b"".join(received))
            kept = images[:-1]
            assert [int(row["id"]) for row in rows] == [image["id"] for image in kept]
            assert len(archive.namelist()) == len(kept) + 1
            for row, data in zip(rows, photos, strict=False):
                assert sha256(archive.read(row["file"])) == sha256(data) == row["sha256"]


async def test_archives_do_not_starve_the_default_executor(
    make_settings: SettingsFactory,
) -> None:
    # The ZIP encoder occupies the loop's default executor while it waits for file chunks;
    # were the chunks read through that executor too, one thread would deadlock here.
    data = [make_image_bytes("jpeg", size=(640, 480), name=n) for n in ("coffee", "rocket")]
    async for server in run_server(make_settings()):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            room = await new_room(http, "one thread")
            for photo in data:
                await upload(http, room, photo)
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
            url = f"/api/rooms/{room['token']}/archive.zip"
            answers = await asyncio.wait_for(
                asyncio.gather(*(http.get(url, headers=host(room)) for _ in range(3))),
                timeout=60,
            )
            for answer in answers:
                _, rows = read_archive(answer.content)
                assert [row["sha256"] for row in rows] == [sha256(photo) for photo in data]


# --- presigned links ---------------------------------------------------------------------------


def tampered(signature: str) -> str:
    """``signature`` (``<timestamp>.<mac>``) with the MAC's first character changed. Not the last:
    its low bits are base64 padding, so changing it (``B`` to ``A``, say) may change nothing."""
    timestamp, mac = signature.split(".")
    return f"{timestamp}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}"


async def make_link(http: httpx.AsyncClient, room: dict[str, Any], path: str) -> httpx.Response:
    return await http.post(
        f"/api/rooms/{room['token']}/links", json={"path": path}, headers=host(room)
    )


async def test_links_download_without_the_host_key(keyed_client: AppClient) -> None:
    http = keyed_client.http
    room = await new_room(http)
    data = make_image_bytes("webp", size=(640, 480), name="rocket")
    image = await upload(http, room, data)
    archive_path = f"/api/rooms/{room['token']}/archive.zip"
    original_path = f"/api/rooms/{room['token']}/images/{image['id']}/original"

    before = datetime.now(UTC)
    made = await make_link(http, room, archive_path)
    assert made.status_code == 200, made.text
    link = made.json()
    assert link["url"].startswith(archive_path + "?signature=")
    expires_at = datetime.fromisoformat(link["expires_at"])
    assert timedelta(seconds=598) <= expires_at - before <= timedelta(seconds=601)

    archive = await http.get(link["url"])  # no Authorization
    assert archive.status_code == 200, archive.text
    _, rows = read_archive(archive.content)
    assert [row["sha256"] for row in rows] == [sha256(data)]

    original_link = (await make_link(http, room, original_path)).json()["url"]
    original = await http.get(original_link)
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "image/webp"
    assert disposition_name(original.headers["content-disposition"]) == (
        f"{TITLE}-{image['id']}.webp"
    )
    # Without a link the host key still works, and nothing else does.
    assert (await http.get(original_path, headers=host(room))).content == data
    assert (await http.get(original_path)).status_code == 401


async def test_bad_and_expired_links_are_refused(keyed_client: AppClient) -> None:
    http = keyed_client.http
    room = await new_room(http)
    other = await new_room(http, "other")
    image = await upload(http, room, make_image_bytes("jpeg", size=(320, 240)))
    archive_path = f"/api/rooms/{room['token']}/archive.zip"
    url = (await make_link(http, room, archive_path)).json()["url"]
    signature = url.split("signature=")[1]

    def refused(response: httpx.Response) -> str:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "invalid_link"
        return str(response.json()["error"]["message"])

    flipped = tampered(signature)
    refused(await http.get(f"{archive_path}?signature={flipped}"))
    refused(await http.get(f"{archive_path}?signature="))
    refused(await http.get(f"{archive_path}?signature={'x' * 500}"))
    # A signature is for exactly one path: not another room's archive, not an original.
    refused(await http.get(f"/api/rooms/{other['token']}/archive.zip?signature={signature}"))
    original = f"/api/rooms/{room['token']}/images/{image['id']}/original"
    refused(await http.get(f"{original}?signature={signature}"))

    # Made with the service's key eleven minutes ago: expired one minute ago.
    eleven_minutes_ago = datetime.now(UTC) - timedelta(minutes=11)
    old_url, old_expiry = DownloadLinks(SECRET.encode(), lambda: eleven_minutes_ago).sign(
        archive_path
    )
    assert old_expiry < datetime.now(UTC)
    assert "expired" in refused(await http.get(old_url))
    # Nine minutes ago: still valid. Another key: refused.
    nine_minutes_ago = datetime.now(UTC) - timedelta(minutes=9)
    recent_url, _ = DownloadLinks(SECRET.encode(), lambda: nine_minutes_ago).sign(archive_path)
    assert (await http.get(recent_url)).status_code == 200
    forged_url, _ = DownloadLinks(b"another key", lambda: datetime.now(UTC)).sign(archive_path)
    assert "expired" not in refused(await http.get(forged_url))


async def test_links_only_for_the_hosts_own_downloads(backend_client: AppClient) -> None:
    http = backend_client.http
    room = await new_room(http)
    other = await new_room(http, "other")
    image = await upload(http, room, make_image_bytes("jpeg", size=(320, 240)))
    token = room["token"]
    links = f"/api/rooms/{token}/links"
    body = {"path": f"/api/rooms/{token}/archive.zip"}

    none = await http.post(links, json=body)
    assert none.status_code == 401
    wrong = await http.post(links, json=body, headers=host(other))
    assert wrong.status_code == 403
    guest = await join(http, room, "Guest")
    as_guest = await http.post(links, json=body, headers={"X-Participant-Key": guest})
    assert as_guest.status_code == 401

    full = f"/api/rooms/{token}/images/{image['id']}/download"
    as_guest = await http.post(links, json={"path": full}, headers={"X-Participant-Key": guest})
    assert as_guest.status_code == 401
    wrong = await http.post(links, json={"path": full}, headers=host(other))
    assert wrong.status_code == 403

    for path in (
        f"/api/rooms/{other['token']}/archive.zip",
        f"/api/rooms/{other['token']}/images/{image['id']}/original",
        f"/api/rooms/{other['token']}/images/{image['id']}/download",
        f"/api/rooms/{token}/images/{image['id']}/original?x=1",
        f"/api/rooms/{token}/images/{image['id']}/download?x=1",
        f"/api/rooms/{token}/images/{image['id']}/download/",
        f"/api/rooms/{token}/images/{image['id']}/original/download",
        f"/api/rooms/{token}/images/{image['id']}/full.jpg",
        f"/api/rooms/{token}/images/{image['id']}",
        f"/api/rooms/{token}/images/../original",
        f"/api/rooms/{token}/images/../download",
        f"/api/rooms/{token}/images//download",
        f"/api/rooms/{token}/images/\uff11\uff12/original",  # fullwidth 12
        f"/api/rooms/{token}/images/\uff11\uff12/download",
        f"/api/rooms/{token}/host",
        f"http://evil.example/api/rooms/{token}/archive.zip",
        "",
        42,
    ):
        response = await make_link(http, room, path)  # type: ignore[arg-type]
        assert response.status_code == 422, path
        assert response.json()["error"]["code"] == "invalid_path"


async def test_links_to_full_resolution_downloads_need_no_passcode(
    keyed_client: AppClient,
) -> None:
    # The host page's viewer: the host's browser has no participant cookie in a room with a
    # passcode, and a plain link cannot send the host key.
    http = keyed_client.http
    room = await new_room(http, passcode="tulips-42", moderation="approve")
    other = await new_room(http, "other", passcode="tulips-42")
    guest = await join(http, room, "Guest", passcode="tulips-42")
    shown = await upload(
        http, room, make_image_bytes("jpeg", size=(640, 480), name="rocket"), key=guest
    )
    pending = await upload(http, room, make_image_bytes("png", size=(300, 200)), key=guest)
    approved = await http.post(
        f"/api/rooms/{room['token']}/images/{shown['id']}/approve", headers=host(room)
    )
    assert approved.status_code == 200, approved.text
    full_path = f"/api/rooms/{room['token']}/images/{shown['id']}/download"
    assert (await http.get(full_path)).json()["error"]["code"] == "passcode_required"

    before = datetime.now(UTC)
    made = await make_link(http, room, full_path)
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "private, no-store"
    link = made.json()
    assert link["url"].startswith(full_path + "?signature=")
    expires_at = datetime.fromisoformat(link["expires_at"])
    assert timedelta(seconds=598) <= expires_at - before <= timedelta(seconds=601)

    assert not http.cookies
    response = await http.get(link["url"])  # no cookie, no key, no Authorization
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "private, no-store"
    assert disposition_name(response.headers["content-disposition"]) == f"{TITLE}-{shown['id']}.jpg"
    assert_upright(
        assert_clean_jpeg(response.content, (640, 480)), reference_photo("rocket", (640, 480))
    )

    # A host-made link fetches what the host may fetch: a pending image too.
    pending_path = f"/api/rooms/{room['token']}/images/{pending['id']}/download"
    pending_url = (await make_link(http, room, pending_path)).json()["url"]
    pending_full = await http.get(pending_url)
    assert pending_full.status_code == 200, pending_full.text
    assert_clean_jpeg(pending_full.content, (300, 200))
    # The link is for what exists: an image deleted meanwhile is gone.
    deleted = await http.delete(
        f"/api/rooms/{room['token']}/images/{pending['id']}", headers=host(room)
    )
    assert deleted.status_code == 204
    assert (await http.get(pending_url)).status_code == 404

    def refused(response: httpx.Response) -> str:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "invalid_link"
        return str(response.json()["error"]["message"])

    signature = link["url"].split("signature=")[1]
    # Exactly one path: not another image, not another room, not the original.
    refused(await http.get(f"{pending_path}?signature={signature}"))
    refused(
        await http.get(
            f"/api/rooms/{other['token']}/images/{shown['id']}/download?signature={signature}"
        )
    )
    original_path = f"/api/rooms/{room['token']}/images/{shown['id']}/original"
    refused(await http.get(f"{original_path}?signature={signature}"))
    original_url = (await make_link(http, room, original_path)).json()["url"]
    refused(await http.get(f"{full_path}?signature={original_url.split('signature=')[1]}"))
    # Tampered, empty or too long; a bad signature is refused even next to good credentials.
    flipped = tampered(signature)
    refused(await http.get(f"{full_path}?signature={flipped}"))
    refused(await http.get(f"{full_path}?signature="))
    refused(await http.get(f"{full_path}?signature={'x' * 500}"))
    refused(await http.get(f"{full_path}?signature={flipped}", headers=host(room)))
    refused(
        await http.get(f"{full_path}?signature={flipped}", headers={"X-Participant-Key": guest})
    )
    # Made eleven minutes ago: expired. Made with another key: refused.
    eleven_minutes_ago = datetime.now(UTC) - timedelta(minutes=11)
    old_url, _ = DownloadLinks(SECRET.encode(), lambda: eleven_minutes_ago).sign(full_path)
    assert "expired" in refused(await http.get(old_url))
    forged_url, _ = DownloadLinks(b"another key", lambda: datetime.now(UTC)).sign(full_path)
    assert "expired" not in refused(await http.get(forged_url))

    # Without a signature, the viewer rules still apply.
    assert (await http.get(full_path)).status_code == 401
    assert (await http.get(full_path, headers=host(room))).status_code == 200
    assert (await http.get(full_path, headers={"X-Participant-Key": guest})).status_code == 200
