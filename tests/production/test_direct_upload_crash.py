"""A real server process killed (SIGKILL, its whole process group) after a direct upload's
``complete`` answered ``202``, and started again on the same data folder and database: the
upload ends ``done`` with one image and one ``image_added``, and no bytes are left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.photos import make_image_bytes
from tests.polling import poll_until
from tests.production.crash_server import CRASH_POINT
from tests.production.processes import Replica, running

pytestmark = pytest.mark.xdist_group("replicas")

PHOTO = make_image_bytes("jpeg", size=(2400, 1800))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgresql":
        return {
            "DATABASE_URL": request.getfixturevalue("pg_database_url"),
            "IMAGESHARK_MIGRATE_ON_START": "false",
        }
    return {}


async def direct_upload_then_kill(env: dict[str, str], *, at_commit: bool) -> dict[str, Any]:
    """Ask, send and complete a direct upload on a server, then SIGKILL it: once the image's
    row is committed and before its files are published (``at_commit``), else right after the
    ``202`` (wherever processing has got to)."""
    module = "tests.production.crash_server" if at_commit else "web.cli"
    server = Replica("crashing", env, module=module)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            room = (await http.post("/api/rooms", json={"title": "crash"})).json()
            token = room["token"]
            declared = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(PHOTO)}
            upload = (await http.post(f"/api/rooms/{token}/uploads", json=declared)).json()
            sent = await http.put(upload["url"], content=PHOTO, headers=upload["headers"])
            assert sent.status_code == 204, sent.text
            done = await http.post(f"/api/rooms/{token}/uploads/{upload['upload_id']}/complete")
            assert done.status_code == 202, done.text
            if at_commit:
                await server.wait_for_line(CRASH_POINT)
            await server.kill()
    finally:
        await server.kill()
    return {"token": token, "upload_id": upload["upload_id"]}


@pytest.mark.parametrize("at_commit", [True, False], ids=["at-commit", "after-202"])
async def test_a_killed_server_finishes_the_direct_upload_once_on_restart(
    database_env: dict[str, str], tmp_path: Path, at_commit: bool
) -> None:
    env = {
        **database_env,
        "IMAGESHARK_DATA_DIR": str(tmp_path),
        "IMAGESHARK_RENDITION_WORKERS": "1",
    }
    crashed = await direct_upload_then_kill(env, at_commit=at_commit)
    token, upload_id = crashed["token"], crashed["upload_id"]

    server = Replica("restarted", env)
    async with running(server), httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:

        async def settled() -> dict[str, Any] | None:
            state = (await http.get(f"/api/rooms/{token}/uploads/{upload_id}")).json()
            return state if state["status"] != "processing" else None

        state = await poll_until(settled, deadline=60, what="upload resumed")
        assert state["status"] == "done", state
        image = state["image"]
        for url in (image["url"], image["thumb_url"]):
            assert (await http.get(url)).status_code == 200, url
        events = (await http.get(f"/api/rooms/{token}/events")).json()["items"]
        assert [event["kind"] for event in events] == ["image_added"]
        assert events[0]["payload"]["id"] == image["id"]
        listed = (await http.get(f"/api/rooms/{token}/images")).json()["items"]
        assert [item["id"] for item in listed] == [image["id"]]
        again = await http.post(f"/api/rooms/{token}/uploads/{upload_id}/complete")
        assert again.json()["status"] == "done"

        async def no_bytes_left() -> bool:
            direct = tmp_path / "direct"
            return not any(direct.iterdir())

        await poll_until(no_bytes_left, deadline=10, what="direct upload bytes deleted")
