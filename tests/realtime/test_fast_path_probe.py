"""The start-up probes of the accelerators over library internals (realtime/internals.py).

On the locked library versions every accelerator finds what it reads and is live, and the
app's ``imageshark_fast_path`` gauge says so (``http`` is direct when ``imageshark serve``
runs its protocol). With an internal missing at start-up, the
direct broadcast path stays off: a real server still delivers every event, through
python-socketio's own manager, and says so in one warning line and in the gauge.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import socketio
from asgi_lifespan import LifespanManager
from engineio.async_socket import AsyncSocket
from packaging.requirements import Requirement
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from websockets.frames import Frame

from realtime import guard
from realtime.fanout import SequentialFanOutManager, internals_missing, register_websockets
from tests.conftest import SettingsFactory, serve_asgi
from tests.photos import make_image_bytes
from tests.realtime.live_client import LiveClient
from web.app import create_app
from web.connections import HeaderTimeoutProtocol, http_protocol

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
# The libraries whose internals the accelerators read (each line's comment in pyproject.toml).
INTERNALS_READ_FROM = ("python-socketio", "python-engineio", "uvicorn", "websockets")


def fast_path_modes(exposition: str) -> dict[str, dict[str, float]]:
    """``{path: {mode: value}}`` of the ``imageshark_fast_path`` gauge in a /metrics body."""
    modes: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name == "imageshark_fast_path":
            for sample in family.samples:
                path, mode = sample.labels["path"], sample.labels["mode"]
                modes.setdefault(path, {})[mode] = sample.value
    return modes


def deliveries(path: str) -> float:
    """The process-wide count of broadcast packets the direct manager handed over by ``path``."""
    value = REGISTRY.get_sample_value("imageshark_fanout_deliveries_total", {"path": path})
    return value or 0.0


def probed_server() -> socketio.AsyncServer:
    return socketio.AsyncServer(async_mode="asgi", client_manager=SequentialFanOutManager())


def test_the_locked_versions_are_in_the_tested_ranges() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    requirements = {Requirement(line).name: Requirement(line) for line in dependencies}
    for name in INTERNALS_READ_FROM:
        requirement = requirements[name]  # declared, not only pulled in by another package
        assert requirement.specifier.contains(metadata.version(name)), (name, requirement)
        # A floor and a cap: a new minor version is a decision, not an accident.
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, (name, requirement)


def test_every_probe_finds_its_internals_on_the_locked_versions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = probed_server()
    assert internals_missing(server) == []
    assert guard._internals_missing(server) == []
    protocol = http_protocol(10)
    assert isinstance(protocol, type) and issubclass(protocol, HeaderTimeoutProtocol)
    assert register_websockets(server) is True
    assert server.manager.direct is True
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("http_deadlines", [True, False])
async def test_the_metrics_show_every_accelerator_direct_on_the_locked_versions(
    make_settings: SettingsFactory, http_deadlines: bool
) -> None:
    # imageshark serve passes http_deadlines when its protocol probe passed; plain uvicorn not.
    app = create_app(make_settings(), http_deadlines=http_deadlines)
    async with (
        LifespanManager(app, startup_timeout=60) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        response = await http.get("/metrics")
    assert response.status_code == 200
    live, other = ("direct", "stock") if http_deadlines else ("stock", "direct")
    assert fast_path_modes(response.text) == {
        "fanout": {"direct": 1.0, "stock": 0.0},
        "guard": {"direct": 1.0, "stock": 0.0},
        "http": {live: 1.0, other: 0.0},
    }


@pytest.mark.parametrize(
    ("owner", "name", "reported"),
    [
        (AsyncSocket, "_websocket_handler", "engineio.AsyncSocket._websocket_handler"),
        (Frame, "serialize", "websockets.Frame.serialize(mask, extensions)"),
        (SequentialFanOutManager, "get_participants", "socketio.AsyncManager.get_participants"),
    ],
)
def test_the_fanout_probe_names_a_missing_internal(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, reported: str
) -> None:
    server = probed_server()
    # Looked up through the class and its bases: removed where it is defined.
    defining = next(cls for cls in owner.__mro__ if name in cls.__dict__)
    monkeypatch.delattr(defining, name)
    assert internals_missing(server) == [reported]


def test_the_fanout_probe_sees_an_asyncio_queue_without_its_getters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = probed_server()

    class RenamedQueue(asyncio.Queue[object]):
        def __init__(self) -> None:
            super().__init__()
            self._waiters = self.__dict__.pop("_getters")

    monkeypatch.setattr(server.eio, "create_queue", RenamedQueue)
    assert internals_missing(server) == ["asyncio.Queue._getters"]


async def _upload(http: httpx.AsyncClient, token: str, name: str) -> dict[str, object]:
    response = await http.post(
        f"/api/rooms/{token}/images",
        files={"file": ("p.jpg", make_image_bytes("jpeg", name=name), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    image: dict[str, object] = response.json()
    return image


async def test_with_an_internal_missing_the_stock_manager_delivers_every_event(
    make_settings: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    # A python-engineio that renamed the method the direct path finds a socket by: the probe
    # runs once, when the app is built; the server then runs on the library as it is.
    with monkeypatch.context() as patch:
        patch.delattr(AsyncSocket, "_websocket_handler")
        app = create_app(make_settings())
    direct_before, queued_before = deliveries("direct"), deliveries("queued")
    async for base_url, _ in serve_asgi(app):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            room = (await http.post("/api/rooms", json={"title": "stock"})).json()
            clients = [LiveClient(base_url, room["token"], name) for name in ("one", "two")]
            for live_client in clients:
                await live_client.connect("websocket")
            try:
                images = [
                    await _upload(http, room["token"], name)
                    for name in ("coffee", "rocket", "chelsea")
                ]
                for live_client in clients:
                    received = [await live_client.next("image_added") for _ in images]
                    assert received == [("image_added", image) for image in images]
            finally:
                await asyncio.gather(*(live_client.close() for live_client in clients))
            metrics = await http.get("/metrics")
    assert fast_path_modes(metrics.text)["fanout"] == {"direct": 0.0, "stock": 1.0}
    assert fast_path_modes(metrics.text)["guard"] == {"direct": 1.0, "stock": 0.0}
    # Neither of the direct manager's paths carried anything: python-socketio's emit did.
    assert (deliveries("direct"), deliveries("queued")) == (direct_before, queued_before)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in warnings] == [
        "fanout: library internals not found (engineio.AsyncSocket._websocket_handler): "
        "room broadcasts go through python-socketio's own manager"
    ]
