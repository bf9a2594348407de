"""Image files in Azure Blob Storage against Azurite, Microsoft's emulator (a Node process:
this tier): :class:`web.object_media.ObjectMedia` over obstore's ``AzureStore``, and the whole
service configured by ``IMAGESHARK_STORAGE_URL=az://...`` and the ``AZURE_STORAGE_*``
variables."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from obstore.store import AzureStore
from PIL import Image

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.photos import make_image_bytes
from tests.polling import poll_until
from tests.production.processes import AZURITE_KEY, AzuriteServer, running
from tests.web.test_media_store import SPEC, committed_of
from web.object_media import ORPHAN_GRACE_SECONDS, ObjectMedia
from web.pipeline import RenditionPool
from web.storage import LocalImageStore

CONTAINER = "photos"
PREFIX = "wedding"


async def test_object_media_on_azure_blob_storage(tmp_path: Path) -> None:
    azurite = AzuriteServer(tmp_path / "azurite")
    async with running(azurite):
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        await asyncio.to_thread(service.create_container, "photos")
        store = AzureStore(
            "photos",
            prefix="wedding",
            config={
                "account_name": azurite.account,
                "account_key": AZURITE_KEY,
                "endpoint": azurite.endpoint,
            },
            client_options={"allow_http": True},
        )
        offset = [0.0]
        media = ObjectMedia(
            store,
            LocalImageStore(tmp_path / "scratch"),
            RenditionPool(workers=1, queue_limit=2, on_demand=True),
            url_seconds=600,
            clock=lambda: time.time() + offset[0],
        )
        await media.start()
        reader = ThreadPoolExecutor(max_workers=1)
        try:
            photo = make_image_bytes("jpeg", size=(800, 600))
            staged = await media.stage_and_render(photo, SPEC)
            orphan = await media.stage_and_render(make_image_bytes("png"), SPEC)
            container = service.get_container_client("photos")
            names = sorted(blob.name for blob in container.list_blobs())
            assert f"wedding/{staged.key}/display.jpg" in names and len(names) == 6

            thumb = await media.rendition(staged.key, "thumb.jpg")
            assert thumb is not None and thumb.redirect is not None
            assert "sig=" in thumb.redirect  # a service SAS signed with the account key
            async with httpx.AsyncClient() as http:
                served = await http.get(thumb.redirect)
                assert served.status_code == 200
                assert Image.open(io.BytesIO(served.content)).width == staged.rendition.thumb_width
                original = await media.original(staged.key, "image/jpeg")
                assert original is not None and original.redirect is not None
                assert (await http.get(original.redirect)).content == photo
            opened = await media.open_original(staged.key, reader)
            assert opened is not None and await opened.read() == photo
            await opened.close()
            committed = committed_of([staged.key])
            full = await media.full_size(staged.key, SPEC, committed)
            assert full is not None and full.size > 0

            offset[0] = ORPHAN_GRACE_SECONDS + 1
            assert await media.recover(committed) == (0, 1)
            left = sorted(blob.name for blob in container.list_blobs())
            assert not any(f"/{orphan.key}/" in name for name in left)
            await media.delete(staged.key)
            assert list(container.list_blobs()) == []
        finally:
            reader.shutdown()
            await media.close()


@pytest.fixture
async def azurite(tmp_path: Path) -> AsyncIterator[AzuriteServer]:
    """Azurite on a free port, with the ``photos`` container the settings name created."""
    server = AzuriteServer(tmp_path / "azurite")
    async with running(server):
        service = BlobServiceClient.from_connection_string(server.connection_string)
        await asyncio.to_thread(service.create_container, CONTAINER)
        yield server


def blob_names(azurite: AzuriteServer) -> list[str]:
    """Every blob's name in the container, sorted."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(CONTAINER)
    return sorted(blob.name for blob in container.list_blobs())


def assert_jpeg_from_the_store(redirect: httpx.Response, azurite: AzuriteServer) -> None:
    """``redirect`` points at a presigned GET on Azurite, which serves a JPEG."""
    assert redirect.status_code == 302, redirect.text
    target = redirect.headers["location"]
    assert target.startswith(azurite.endpoint + "/") and "sig=" in target, target
    served = httpx.get(target)
    assert served.status_code == 200
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"


@pytest.fixture
async def azure_client(
    make_settings: SettingsFactory, azurite: AzuriteServer
) -> AsyncIterator[AppClient]:
    """The app built from ``IMAGESHARK_STORAGE_URL=az://photos/wedding`` and the
    ``AZURE_STORAGE_*`` variables naming Azurite's account, key and endpoint."""
    settings = make_settings(
        storage_url=f"az://{CONTAINER}/{PREFIX}",
        AZURE_STORAGE_ACCOUNT_NAME=azurite.account,
        AZURE_STORAGE_ACCOUNT_KEY=AZURITE_KEY,
        AZURE_STORAGE_ENDPOINT=azurite.endpoint,
    )
    async for client in _app_client(settings):
        yield client


async def test_azure_blob_storage_through_the_settings(
    azure_client: AppClient, azurite: AzuriteServer
) -> None:
    """An upload, its redirects to presigned GETs, a direct upload to a presigned PUT, the
    pages' CSP, deletion and readiness, all on Azurite."""
    http = azure_client.http
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["storage"] == "ok"
    created = await http.post("/api/rooms", json={"title": "Azure room"})
    assert created.status_code == 201, created.text
    room = created.json()
    token, host = room["token"], {"Authorization": f"Bearer {room['host_key']}"}

    posted = await http.post(
        f"/api/rooms/{token}/images",
        files={"file": ("photo", make_image_bytes("jpeg", size=(800, 600)), "image/jpeg")},
    )
    assert posted.status_code == 201, posted.text
    image = posted.json()
    key = image["url"].split("/")[2]
    assert blob_names(azurite) == [
        f"{PREFIX}/{key}/display.jpg",
        f"{PREFIX}/{key}/original",
        f"{PREFIX}/{key}/thumb.jpg",
    ]
    assert_jpeg_from_the_store(await http.get(image["url"]), azurite)
    assert_jpeg_from_the_store(await http.get(image["thumb_url"]), azurite)

    photo = make_image_bytes("png", size=(640, 480))
    declared = {"filename": "p.png", "content_type": "image/png", "size": len(photo)}
    asked = await http.post(f"/api/rooms/{token}/uploads", json=declared)
    assert asked.status_code == 201, asked.text
    upload = asked.json()
    assert upload["method"] == "PUT" and upload["url"].startswith(azurite.endpoint + "/")
    async with httpx.AsyncClient() as store:
        sent = await store.put(upload["url"], content=photo, headers=upload["headers"])
    assert sent.status_code == 201, sent.text
    assert f"{PREFIX}/direct/{upload['upload_id']}" in blob_names(azurite)
    state_url = f"/api/rooms/{token}/uploads/{upload['upload_id']}"
    completed = await http.post(f"{state_url}/complete")
    assert completed.status_code == 202, completed.text

    async def settled() -> dict[str, Any] | None:
        state: dict[str, Any] = (await http.get(state_url)).json()
        return state if state["status"] != "processing" else None

    state = await poll_until(settled, deadline=60, what="direct upload settled")
    assert state["status"] == "done", state
    assert_jpeg_from_the_store(await http.get(state["image"]["url"]), azurite)
    assert not any("/direct/" in name for name in blob_names(azurite))
    assert len(blob_names(azurite)) == 6

    for done in (image, state["image"]):
        deleted = await http.delete(f"/api/rooms/{token}/images/{done['id']}", headers=host)
        assert deleted.status_code == 204, deleted.text
    assert blob_names(azurite) == []

    # The guest page sends photos to Azurite and loads them from it: its CSP names that origin.
    page = await http.get(f"/r/{token}")
    assert page.status_code == 200
    origin = urlsplit(azurite.endpoint)
    policy = page.headers["content-security-policy"]
    assert f"{origin.scheme}://{origin.netloc}" in policy and "*" not in policy
