"""The OpenAPI document: valid OpenAPI 3.1, complete, and true to a real server under fuzzing.

The fuzzer is schemathesis driven by the served ``/openapi.json``: valid requests (positive
mode) and malformed ones (negative mode: wrong types, values out of range, missing fields),
against a real uvicorn on a loopback port, checking every answer is not a server error and
matches the document (status, content type, headers, body schema).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from tests.conftest import AppClient, SettingsFactory, _app_client, run_server
from tests.photos import make_image_bytes
from web.settings import Settings

FUZZ_EXAMPLES = 100
"""Hypothesis examples per operation in the fuzzing phase (the coverage phase adds its own
boundary and malformed cases): about 2,500 requests in 16 s
(docs/decisions/0022-openapi-from-declared-types.md)."""
FUZZ_WORKERS = 1
"""One: with more, schemathesis' threads race in Hypothesis' lambda-source cache (a KeyError
reported as an error of the run)."""
FUZZ_TIMEOUT_SECONDS = 300
"""A hung run fails after this long (a guard, not a speed target: bench and decision 0022
have the timings)."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
UNLIMITED = "100000/minute"


async def test_document_is_valid_openapi_3_1(client: AppClient) -> None:
    response = await client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises OpenAPIValidationError with the first problem


def _app_routes(client: AppClient) -> list[Route]:
    """The HTTP routes of the client's app (the Starlette app under Socket.IO and the proxy
    middleware), mounts such as static files left out."""
    starlette_app = client.app.app.other_asgi_app
    return [route for route in starlette_app.routes if isinstance(route, Route)]


async def test_every_api_route_is_documented_with_its_errors(client: AppClient) -> None:
    document = (await client.http.get("/openapi.json")).json()
    routes = _app_routes(client)
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
    assert not any(
        path.startswith("/r/") or path in ("/docs", "/openapi.json") for path, _ in documented
    )


async def test_metrics_token_is_a_security_scheme_when_set(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(metrics_token="s3cret-metrics")):
        document = (await client.http.get("/openapi.json")).json()
        metrics = document["paths"]["/metrics"]["get"]
        assert metrics["security"] == [{"metricsToken": []}]
        assert "metrics_token_required" in metrics["responses"]["401"]["description"]
        assert "s3cret" not in json.dumps(document)
        validate(document)


async def test_every_room_setting_is_declared(client: AppClient) -> None:
    from web.rooms.room_settings import SETTABLE_FIELDS

    schemas = (await client.http.get("/openapi.json")).json()["components"]["schemas"]
    assert set(schemas["RoomChanges"]["properties"]) == set(SETTABLE_FIELDS)
    assert set(schemas["RoomCreation"]["properties"]) == set(SETTABLE_FIELDS)
    assert schemas["RoomCreation"]["required"] == ["title"]
    assert schemas["RoomChanges"].get("required", []) == []
    assert schemas["RoomChanges"]["additionalProperties"] is False


async def test_docs_page_loads_swagger_ui_from_our_own_static_files(client: AppClient) -> None:
    page = await client.http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self';")
    assert page.headers["x-content-type-options"] == "nosniff"
    assets = re.findall(r'(?:src|href)="(?:http://testserver)?(/static/[^"]+)"', page.text)
    assert any(asset.endswith("/swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("/swagger-ui.css") for asset in assets)
    assert any(asset.endswith("/js/api-docs.js") for asset in assets)
    for asset in assets:
        assert (await client.http.get(asset)).status_code == 200, asset


# --- fuzzing a real server ----------------------------------------------------------------


async def _fuzz_room(
    http: httpx.AsyncClient, images: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """A room with ``settings`` holding ``images`` uploaded images and a participant: values
    for the fuzzer's path parameters and credentials, so its requests reach a room instead of
    404."""
    room = (await http.post("/api/rooms", json={"title": "Fuzzed", **settings})).json()
    token = room["token"]
    joining = {"name": "Fuzz", "passcode": settings.get("passcode")}
    joined = (await http.post(f"/api/rooms/{token}/participants", json=joining)).json()
    uploaded = []
    for number in range(images):
        image = await http.post(
            f"/api/rooms/{token}/images",
            files={
                "file": ("a.jpg", make_image_bytes("JPEG", size=(64, 48 + number)), "image/jpeg")
            },
            headers={"X-Participant-Key": joined["participant_key"]},
        )
        assert image.status_code == 201, image.text
        uploaded.append(image.json())
    # A direct upload asked for and never sent: the fuzzer's upload_id.
    upload = await http.post(
        f"/api/rooms/{token}/uploads",
        json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000},
        headers={"X-Participant-Key": joined["participant_key"]},
    )
    assert upload.status_code == 201, upload.text
    return {
        "token": token,
        "host_key": room["host_key"],
        "participant_key": joined["participant_key"],
        "images": uploaded,
        "upload_id": upload.json()["upload_id"],
    }


def _host(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


def _participant(room: dict[str, Any]) -> dict[str, str]:
    return {"X-Participant-Key": room["participant_key"]}


def _toml_table(values: dict[str, Any]) -> str:
    """An inline TOML table (JSON strings and integers are valid TOML values)."""
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


def fuzz_config(room: dict[str, Any], closing: dict[str, Any]) -> str:
    """schemathesis.toml aiming every operation at ``room``, its first image and its direct
    upload with its host key (and the participant's key for the participant's own
    operations), except those that end something: the delete at its second image, the close
    at the room ``closing``, so the other operations keep a live room and image whatever runs
    first."""
    image = room["images"][0]
    parameters = {
        "path.token": room["token"],
        "path.image_id": image["id"],
        "path.key": image["url"].split("/")[2],
        "path.upload_id": room["upload_id"],
    }
    operations = [
        # Joining with a participant's key would re-key that participant: only the
        # participant's own operations carry it.
        ("GET /api/rooms/{token}/me", {}, _participant(room)),
        ("PATCH /api/rooms/{token}/me", {}, _participant(room)),
        (
            "DELETE /api/rooms/{token}/images/{image_id}",
            {"path.image_id": room["images"][1]["id"]},
            {},
        ),
        ("POST /api/rooms/{token}/close", {"path.token": closing["token"]}, _host(closing)),
    ]
    lines = [f"headers = {_toml_table(_host(room))}", f"parameters = {_toml_table(parameters)}"]
    for name, overrides, headers in operations:
        lines += ["[[operations]]", f"include-name = {json.dumps(name)}"]
        lines.append(f"parameters = {_toml_table({**parameters, **overrides})}")
        if headers:
            lines.append(f"headers = {_toml_table({**_host(room), **headers})}")
    return "\n".join([*lines, ""])


FUZZ_ROOMS = {
    "open-room-sqlite": {},
    # The passcode on the wall: the room view with the passcode; uploads wait for approval.
    "passcode-room-postgresql": {
        "passcode": "4821",
        "wall_show_passcode": True,
        "moderation": "approve",
    },
}


@pytest.fixture(params=list(FUZZ_ROOMS))
def fuzz_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """The server's settings for the scenario ``request.param`` names (its database)."""
    database = (
        {"database_url": request.getfixturevalue("pg_database_url")}
        if request.param.endswith("postgresql")
        else {}
    )
    # With a mail server (aiosmtpd): without one the mail routes answer 503 mail_unavailable,
    # documented, but a server error to the fuzzer's checks.
    smtp_port = request.getfixturevalue("smtp_inbox")[1]
    return make_settings(
        **database,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        # The fuzzer is one client address: lift the per-address limits (429 is documented,
        # but would stop most requests before they reach the checks worth fuzzing).
        room_create_rate_limit=UNLIMITED,
        join_rate_limit=UNLIMITED,
        open_join_rate_limit=UNLIMITED,
        upload_rate_limit=UNLIMITED,
        anonymous_upload_rate_limit=UNLIMITED,
    )


@pytest.mark.fuzz
async def test_fuzzed_requests_get_documented_answers(
    fuzz_settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """schemathesis, every phase but the stateful one, positive and negative modes,
    deterministic, through the served document: no 5xx, every answer as documented."""
    scenario = request.node.callspec.params["fuzz_settings"]
    settings = fuzz_settings
    async for server in run_server(settings):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            room = await _fuzz_room(http, images=2, settings=FUZZ_ROOMS[scenario])
            closing = await _fuzz_room(http, images=0, settings=FUZZ_ROOMS[scenario])
        config = tmp_path / "schemathesis.toml"
        config.write_text(fuzz_config(room, closing))
        fuzzer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--no-color",
            "--config-file",
            str(config),
            "run",
            f"{server.base_url}/openapi.json",
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--generation-deterministic",
            "--workers",
            str(FUZZ_WORKERS),
            "--checks",
            ",".join(CHECKS),
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / "junit.xml"),
            "--request-timeout",
            "30",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(fuzzer.communicate(), timeout=FUZZ_TIMEOUT_SECONDS)
        report = output.decode(errors="replace")
        assert fuzzer.returncode == 0, report
