"""Logs of a real ``imageshark serve``: credentials in URLs never reach the access log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.photos import make_image_bytes
from tests.production.processes import Replica, running
from web.logs import redact_query_secrets


def test_redaction_keeps_the_path_and_other_parameters() -> None:
    line = '1.2.3.4:5 - "GET /api/rooms/t/archive.zip?a=1&signature=17.Xy-z&SIG=9 HTTP/1.1" 200'
    assert redact_query_secrets(line) == (
        '1.2.3.4:5 - "GET /api/rooms/t/archive.zip?a=1&signature=[redacted]&SIG=[redacted] '
        'HTTP/1.1" 200'
    )
    assert redact_query_secrets("/api/rooms/t/images?after=5&limit=2") == (
        "/api/rooms/t/images?after=5&limit=2"
    )


async def _access_line(replica: Replica, path: str, seen: int) -> dict:
    """The access-log record for ``path`` written after the first ``seen`` lines (uvicorn
    writes it after the response: wait for the line)."""

    def is_access(line: str) -> bool:
        if not line.startswith("{"):
            return False
        record = json.loads(line)
        return record.get("logger") == "uvicorn.access" and path in record["event"]

    return json.loads(await replica.wait_for_output(is_access, 30, after=seen))


@pytest.mark.processes  # imageshark serve subprocesses
async def test_presigned_links_are_redacted_in_the_access_log(tmp_path: Path) -> None:
    env = {
        "IMAGESHARK_DATA_DIR": str(tmp_path),
        "IMAGESHARK_RENDITION_WORKERS": "1",
        "IMAGESHARK_LOG_FORMAT": "json",
        "IMAGESHARK_LOG_LEVEL": "INFO",
    }
    replica = Replica("A", env)
    async with running(replica), httpx.AsyncClient(base_url=replica.base_url, timeout=30) as http:
        room = (await http.post("/api/rooms", json={"title": "Logs"})).json()
        host = {"authorization": f"Bearer {room['host_key']}"}
        token = room["token"]
        uploaded = await http.post(
            f"/api/rooms/{token}/images", files={"file": ("a.jpg", make_image_bytes("jpeg"))}
        )
        assert uploaded.status_code == 201
        path = f"/api/rooms/{token}/images/{uploaded.json()['id']}/download"
        link = await http.post(f"/api/rooms/{token}/links", json={"path": path}, headers=host)
        url = link.json()["url"]
        signature = url.partition("signature=")[2]
        assert len(signature) > 20
        seen = len(replica.output)
        assert (await http.get(url)).status_code == 200
        record = await _access_line(replica, path, seen)
    assert f"{path}?signature=[redacted]" in record["event"]
    assert not [line for line in replica.output if signature in line]
