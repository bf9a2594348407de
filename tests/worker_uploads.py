"""Sending a direct upload's bytes where the service said, for the worker tests: a ``PUT``
with the given headers, or an HTML form ``POST`` (the fields, then the file as ``file``)."""

from __future__ import annotations

from typing import Any

import httpx


async def send_to_store(upload: dict[str, Any], data: bytes) -> None:
    """Send ``data`` to the target of an issued upload (``POST .../uploads``' answer).

    :raises AssertionError: the store did not answer 2xx.
    """
    async with httpx.AsyncClient(timeout=60) as store:
        if upload["method"] == "PUT":
            sent = await store.put(upload["url"], content=data, headers=upload["headers"])
        else:
            sent = await store.post(
                upload["url"],
                data=upload["fields"],
                files={"file": ("upload", data, "application/octet-stream")},
            )
    assert 200 <= sent.status_code < 300, sent.text
