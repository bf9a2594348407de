"""Image files in Azure Blob Storage: :class:`web.object_media.ObjectMedia` over obstore's
``AzureStore`` against Azurite, Microsoft's emulator (a Node process: this tier)."""

from __future__ import annotations

import asyncio
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from azure.storage.blob import BlobServiceClient
from obstore.store import AzureStore
from PIL import Image

from tests.photos import make_image_bytes
from tests.production.processes import AZURITE_KEY, AzuriteServer, running
from tests.web.test_media_store import SPEC, committed_of
from web.object_media import ORPHAN_GRACE_SECONDS, ObjectMedia
from web.pipeline import RenditionPool
from web.storage import LocalImageStore


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
