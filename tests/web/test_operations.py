"""Operations: Prometheus metrics, request ids, JSON logs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AppClient, LiveServer, SettingsFactory, _app_client
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient
from tests.web.test_rooms import create_room
from web.logs import configure_logging
from web.settings import Settings


def _samples(text: str) -> dict[str, float]:
    """Prometheus text format as ``{'name{labels}': value}``."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_metrics_count_uploads_and_time_renditions(client: AppClient) -> None:
    room = await create_room(client)
    data = make_image_bytes("jpeg")
    url = f"/api/rooms/{room['token']}/images"
    assert (await client.http.post(url, files={"file": ("a.jpg", data)})).status_code == 201
    assert (await client.http.post(url, files={"file": ("a.jpg", data)})).status_code == 200
    assert (await client.http.post(url, files={"file": ("x.jpg", b"nope")})).status_code == 415
    response = await client.http.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    assert samples['imageshark_uploads_total{outcome="created"}'] == 1
    assert samples['imageshark_uploads_total{outcome="duplicate"}'] == 1
    assert samples['imageshark_uploads_total{outcome="rejected"}'] == 1
    assert samples["imageshark_upload_bytes_total"] == len(data)
    assert samples["imageshark_rendition_seconds_count"] == 1
    assert samples["imageshark_upload_to_emit_seconds_count"] == 1
    assert samples["imageshark_connected_clients"] == 0


async def test_request_id_is_echoed_or_made(client: AppClient) -> None:
    given = "6f1c2b1e-8a0e-4c35-9d59-0b3f7a1c2d4e"
    response = await client.http.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    made = await client.http.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != given


async def test_json_logs_carry_request_id(
    client: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings(log_format="json", data_dir=client.settings.data_dir))
        given = "0b7a3c55-23a9-4a63-b1f5-7c5e0f2d1a99"
        room = await create_room(client)
        response = await client.http.post(
            f"/api/rooms/{room['token']}/images",
            files={"file": ("a.jpg", make_image_bytes("png"))},
            headers={"X-Request-ID": given},
        )
        assert response.status_code == 201
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    stored = [line for line in lines if line.get("event") == "image stored"]
    assert len(stored) == 1
    assert stored[0]["request_id"] == given and stored[0]["level"] == "info"
    assert stored[0]["image_id"] == response.json()["id"]


async def test_metrics_token_protects_metrics(make_settings: SettingsFactory) -> None:
    async for client in _app_client(make_settings(metrics_token="s3cret-metrics")):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-metrics"}):
            refused = await client.http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "metrics_token_required"
            assert "imageshark_" not in refused.text
        allowed = await client.http.get(
            "/metrics", headers={"authorization": "Bearer s3cret-metrics"}
        )
        assert allowed.status_code == 200 and "imageshark_uploads_total" in allowed.text


async def test_metrics_are_open_without_a_token(client: AppClient) -> None:
    assert (await client.http.get("/metrics")).status_code == 200


async def test_metrics_serve_the_fan_out_counters(client: AppClient) -> None:
    """The fan-out's counters, made by the live side on the app's registry, are served with
    the app's own collectors."""
    text = (await client.http.get("/metrics")).text
    assert "# TYPE imageshark_fanout_deliveries_total counter" in text
    assert "# TYPE imageshark_fanout_skipped_total counter" in text


def _documented_metrics() -> dict[str, set[str]]:
    """The metric families docs/API.md lists under ``GET /metrics``, each with the labels it
    documents (``imageshark_uploads_total{outcome}``: ``{"outcome"}``)."""
    text = (Path(__file__).parents[2] / "docs" / "API.md").read_text(encoding="utf-8")
    start = text.index("- `GET /metrics`")
    section = text[start : text.index("\n- ", start + 1)]
    found = re.findall(r"`(imageshark_[a-z_]+)(?:\{([a-z_,]+)\})?`", section)
    return {name: set(filter(None, labels.split(","))) for name, labels in found}


async def test_metrics_serve_every_documented_family_on_the_app_registry(
    live_server: LiveServer,
) -> None:
    """After an upload reached a live client, /metrics of the real server has a sample of every
    family docs/API.md lists, with the labels it documents; none of them is in
    prometheus_client's process-wide default registry."""
    documented = _documented_metrics()
    assert len(documented) >= 8 and "imageshark_fanout_deliveries_total" in documented
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        created = await http.post("/api/rooms", json={"title": "Metrics"})
        assert created.status_code == 201
        room = created.json()
        guest = LiveClient(live_server.base_url, room["token"], "guest")
        await guest.connect("websocket")
        try:
            response = await http.post(
                f"/api/rooms/{room['token']}/images",
                files={"file": ("a.jpg", make_image_bytes("jpeg"), "image/jpeg")},
            )
            assert response.status_code == 201
            assert await guest.next("image_added") == ("image_added", response.json())
            text = (await http.get("/metrics")).text
        finally:
            await guest.close()
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    for name, labels in documented.items():
        # A histogram's family is served as its _bucket, _count and _sum samples.
        served = samples.get(name) or samples.get(f"{name}_count")
        assert served, f"{name} is documented but not served"
        assert any(labels <= set(sample) for sample in served), (name, labels, served)
    values = _samples(text)
    assert values['imageshark_uploads_total{outcome="created"}'] == 1
    assert values["imageshark_upload_to_emit_seconds_count"] == 1
    assert (
        values['imageshark_fanout_deliveries_total{path="direct"}']
        + values['imageshark_fanout_deliveries_total{path="queued"}']
        >= 1
    )
    ours = [family.name for family in REGISTRY.collect() if family.name.startswith("imageshark")]
    assert ours == []
