"""The real-process helpers themselves: a replica counts as started only once it answers."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.production.processes import Replica, running

pytestmark = pytest.mark.xdist_group("replicas")


async def test_started_replica_answers_even_if_its_port_was_taken_meanwhile(
    tmp_path: Path,
) -> None:
    # The port a replica picks is free when picked, but any process may bind it (or use it as
    # a connection's local port) before the replica does; uvicorn then logs its start-up as
    # complete, fails to bind and exits, and the test's first request finds nobody there.
    replica = Replica("A", {"IMAGESHARK_DATA_DIR": str(tmp_path)})  # SQLite, local bus
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", replica.port))  # bound, not listening: connections refused
        async with running(replica):
            async with httpx.AsyncClient(base_url=replica.base_url, timeout=30) as http:
                response = await http.get("/healthz")
            assert response.status_code == 200
            assert replica.port != squatter.getsockname()[1]
