"""A real S3-compatible server for the tests: moto's server mode on a loopback port.

``s3_server`` (in tests/conftest.py) starts one per test session (per xdist worker); each test
that needs a bucket gets its own (``s3_bucket``), emptied and removed after the test.
:class:`MotoServer` is also started by the tests that stop the store mid-way: stopping it
closes its listening socket, so clients are refused at once, and starting it again on the same
port finds its buckets where they were (moto's backends live in the test process).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY = "testing-key-id"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


class MotoServer:
    """moto's S3 server in a thread of the test process, on 127.0.0.1.

    :param port: 0 for a free port (the first start), or the port to start on again.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        """Start serving (on the same port as before, after :meth:`stop`)."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]

    def stop(self) -> None:
        """Stop serving and close the listening socket (connections are refused)."""
        assert self._server is not None
        self._server.stop()
        wsgi = self._server._server  # ThreadedMotoServer.stop leaves the socket open
        if wsgi is not None:
            wsgi.server_close()
        self._server = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A boto3 S3 client of this server (what the tests look into the bucket with)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )


@dataclass
class Bucket:
    """One test's bucket on a :class:`MotoServer`.

    :ivar name: the bucket's name.
    :ivar server: the server holding it.
    """

    name: str
    server: MotoServer

    def object_keys(self) -> list[str]:
        """Every object key in the bucket, sorted."""
        client = self.server.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            found.extend(item["Key"] for item in page.get("Contents", ()))
        return sorted(found)

    def settings(self, prefix: str = "photos") -> dict[str, Any]:
        """Settings overrides that put the image files in this bucket under ``prefix``."""
        return {
            "storage_url": f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.server.endpoint,
        }


def new_bucket(server: MotoServer) -> Iterator[Bucket]:
    """Create a bucket of a fresh name; yield it; empty and remove it."""
    bucket = Bucket(f"test-{uuid.uuid4().hex[:16]}", server)
    client = server.client()
    client.create_bucket(Bucket=bucket.name)
    try:
        yield bucket
    finally:
        client = server.client()
        keys = bucket.object_keys()
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket.name,
                Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]},
            )
        client.delete_bucket(Bucket=bucket.name)
