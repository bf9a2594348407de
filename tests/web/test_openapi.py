"""The OpenAPI document: valid OpenAPI 3.1, complete, and true to a real server under fuzzing.

The fuzzer is schemathesis driven by the served ``/openapi.json``: valid requests (positive
mode) and malformed ones (negative mode: wrong types, values out of range, missing fields),
against a real uvicorn on a loopback port, checking every answer is not a server error and
matches the document (status, content type, headers, body schema).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from starlette.routing import Route

from tests.conftest import AppClient, run_server
from tests.photos import make_image_bytes
from web.app import create_app
from web.settings import Settings

FUZZ_EXAMPLES = 12
"""Examples per operation and mode; with the coverage phase's cases about 1,500 requests."""
UNLIMITED = "100000/minute"


async def test_document_is_valid_openapi_3_1(client: AppClient) -> None:
    response = await client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises OpenAPIValidationError with the first problem


def _app_routes(settings: Settings) -> list[Route]:
    """The HTTP routes of the app ``create_app`` builds (under Socket.IO and the proxy
    middleware), mounts such as static files left out."""
    service = create_app(settings, renditions_on_demand=True)
    starlette_app = service.app.other_asgi_app  # type: ignore[attr-defined]
    return [route for route in starlette_app.routes if isinstance(route, Route)]


async def test_every_api_route_is_documented_with_its_errors(client: AppClient) -> None:
    document = (await client.http.get("/openapi.json")).json()
    routes = _app_routes(client.settings)
    api_routes = [route for route in routes if route.include_in_schema]
    assert len(api_routes) >= 25
    for route in api_routes:
        assert route.methods is not None
        for method in route.methods - {"HEAD"}:
            operation = document["paths"].get(route.path, {}).get(method.lower())
            assert operation is not None, f"{method} {route.path} is not in the document"
            errors = [status for status in operation["responses"] if status >= "400"]
            if "{token}" in route.path:
                assert "404" in errors, f"{method} {route.path} documents no 404"
            for status in (status for status in errors if status < "500"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    # The other way round: nothing in the document that the app does not serve.
    served = {(route.path, method.lower()) for route in routes for method in route.methods or ()}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented <= served
    # Pages are HTML, not API operations; the document and its viewer are not operations.
    assert not any(path.startswith("/r/") or path in ("/docs", "/openapi.json") for path, _ in documented)


async def test_every_room_setting_is_declared(client: AppClient) -> None:
    from web.rooms.room_settings import SETTABLE_FIELDS

    schemas = (await client.http.get("/openapi.json")).json()["components"]["schemas"]
    assert set(schemas["RoomChanges"]["properties"]) == set(SETTABLE_FIELDS)
    assert set(schemas["RoomCreation"]["properties"]) == set(SETTABLE_FIELDS)
    assert schemas["RoomCreation"]["required"] == ["title"]
    assert schemas["RoomChanges"].get("required", []) == []
    assert schemas["RoomChanges"]["additionalProperties"] is False


# --- fuzzing a real server ----------------------------------------------------------------


@dataclass
class FuzzTarget:
    """A real server and a room in it to aim requests at."""

    base_url: str
    token: str
    host_key: str
    participant_key: str
    image_id: int
    storage_key: str


class _ServerThread:
    """``run_server`` in its own thread and event loop, for synchronous clients (the fuzzer)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async for server in run_server(self.settings):
            self.base_url = server.base_url
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=60) or self._error is not None:
            raise RuntimeError("the fuzz server did not start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """A server on SQLite with the per-address limits lifted (the fuzzer is one address) and a
    room holding one image, with its host key and a participant's key."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        rendition_workers=1,
        public_base_url=None,
        host="127.0.0.1",
        room_create_rate_limit=UNLIMITED,
        join_rate_limit=UNLIMITED,
        open_join_rate_limit=UNLIMITED,
        upload_rate_limit=UNLIMITED,
        anonymous_upload_rate_limit=UNLIMITED,
    )
    server = _ServerThread(settings)
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            room = http.post("/api/rooms", json={"title": "Fuzzed"}).json()
            joined = http.post(
                f"/api/rooms/{room['token']}/participants", json={"name": "Fuzz"}
            ).json()
            image = http.post(
                f"/api/rooms/{room['token']}/images",
                files={"file": ("a.jpg", make_image_bytes("JPEG", (64, 48)), "image/jpeg")},
                headers={"X-Participant-Key": joined["participant_key"]},
            )
            assert image.status_code == 201, image.text
        yield FuzzTarget(
            base_url=server.base_url,
            token=room["token"],
            host_key=room["host_key"],
            participant_key=joined["participant_key"],
            image_id=image.json()["id"],
            storage_key=image.json()["url"].split("/")[2],
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Any:
    """The served document, loaded by schemathesis with the room's token, image and keys as
    the values of their parameters (so requests reach the room instead of 404)."""
    config = SchemathesisConfig.from_dict(
        {
            "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES, "deterministic": True},
            "headers": {
                "Authorization": f"Bearer {fuzz_target.host_key}",
                "X-Participant-Key": fuzz_target.participant_key,
            },
            "parameters": {
                "path.token": fuzz_target.token,
                "path.image_id": fuzz_target.image_id,
                "path.key": fuzz_target.storage_key,
            },
        }
    )
    return schemathesis.openapi.from_url(f"{fuzz_target.base_url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_get_documented_answers(case: Any, fuzz_target: FuzzTarget) -> None:
    case.call_and_validate(
        base_url=fuzz_target.base_url,
        timeout=30,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_headers_conformance,
            checks.response_schema_conformance,
        ],
    )
