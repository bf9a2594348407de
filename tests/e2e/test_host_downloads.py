"""The host page's "Download all" saves the room's originals as one ZIP straight to disk
(through a presigned link, so no header is needed), byte for byte as guests uploaded them."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    LAPTOP,
    ConsoleLog,
    api_client,
    create_room,
    join,
    new_context,
    open_host,
    screenshot,
    set_host_key,
    upload,
)


async def test_download_all_saves_every_original_byte_for_byte(
    live_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Family reunion")
        guests = [await join(http, room, name) for name in ("Ana", "Bruno")]
        sent = [
            await upload(http, room, guests[0], name="coffee", caption="Espresso"),
            await upload(http, room, guests[1], name="chelsea", fmt="png"),
            await upload(http, room, guests[0], name="astronaut", fmt="webp", width=500),
        ]
        for item in sent:
            assert item.response.status_code == 201, item.response.text

        context = await new_context(browser, viewport=LAPTOP, accept_downloads=True)
        await set_host_key(context, room)
        host = await open_host(console.watch(await context.new_page(), "host"), room)
        await expect(host.locator('#gallery [data-testid="image"]')).to_have_count(3)

        async with host.expect_download() as download_info:
            await host.get_by_role("button", name="Download all").click()
        download = await download_info.value
        assert download.suggested_filename.endswith(".zip"), download.suggested_filename
        saved = tmp_path / "room.zip"
        await download.save_as(saved)
        await expect(
            host.get_by_role("status").filter(has_text="download has started")
        ).to_be_visible()
        await screenshot(host, "host-download-started")
        await context.close()

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        originals = {name: archive.read(name) for name in names if name.startswith("originals/")}
        index = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8"))))

    by_id = {str(item.image["id"]): item for item in sent}
    assert len(originals) == 3, names
    for name, data in originals.items():
        image_id = name.removeprefix("originals/").split("-", 1)[0]
        assert hashlib.sha256(data).hexdigest() == by_id[image_id].sha256, name
    assert sorted(row["sha256"] for row in index) == sorted(item.sha256 for item in sent)
    assert {row["uploader"] for row in index} == {"Ana", "Bruno"}
    console.assert_clean()
