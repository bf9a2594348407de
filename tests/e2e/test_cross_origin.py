"""A page on another origin of the same site cannot act as a guest who visited it.

The service runs on ``127.0.0.1:P``; the attacker's page on ``127.0.0.1:Q``: another origin
(another port) but the same site, so the browser sends the guest's participant cookie with every
request that page makes to the service, whatever its SameSite attribute (the sibling-subdomain
case). From there the page tries, in real Chromium, everything a guest's cookie allows: reading
a passcode room's live events over a WebSocket, joining again (which renames and re-keys the
guest) with a ``text/plain`` fetch and with a ``text/plain`` form, and uploading with a
``no-cors`` multipart fetch. Each is refused, and the guest's name, key and photos are as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.conftest import serve_asgi
from tests.e2e.guest_session import (
    ConsoleLog,
    create_room,
    host_headers,
    join,
    open_room,
    phone_context,
)
from tests.photos import make_image_bytes

PASSCODE = "tulip-42"

# Connects a raw WebSocket to the service's Engine.IO endpoint, asks for the room's namespace
# with nothing but the room token (the cookie goes along by itself) and reports how far it got:
# it resolves at the first answer that settles it (namespace joined or refused, socket closed).
WEBSOCKET_ATTACK = """
([url, token]) => new Promise((resolve) => {
  const seen = [];
  const ws = new WebSocket(url);
  ws.onopen = () => seen.push("open");
  ws.onerror = () => seen.push("error");
  ws.onclose = (event) => resolve({seen, connected: false, close: event.code});
  ws.onmessage = (event) => {
    const data = String(event.data);
    seen.push(data.slice(0, 2));
    if (data.startsWith("0")) ws.send("40" + JSON.stringify({token, name: "Mallory"}));
    else if (data.startsWith("40")) { resolve({seen, connected: true}); ws.close(); }
    else if (data.startsWith("44")) { resolve({seen, connected: false}); ws.close(); }
    else if (data === "2") ws.send("3");
  };
})
"""

POLLING_ATTACK = """
async (url) => {
  try {
    const response = await fetch(url, {credentials: "include"});
    return {readable: true, status: response.status, body: await response.text()};
  } catch (error) {
    return {readable: false, error: String(error)};
  }
}
"""

REJOIN_FETCH = """
async ([url, name]) => {
  await fetch(url, {
    method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({name, passcode: "wrong"}),
  });
}
"""

UPLOAD_FETCH = """
async ([url, bytes]) => {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], {type: "image/jpeg"}), "cat.jpg");
  form.append("caption", "not mine");
  await fetch(url, {method: "POST", mode: "no-cors", credentials: "include", body: form});
}
"""

# The classic JSON-by-form trick: an input named '{"name":"Grace","pad":"' with the value '"}'
# makes the text/plain body '{"name":"Grace","pad":"="}', valid JSON. A top-level navigation.
REJOIN_FORM = """
([url, name]) => {
  const form = document.createElement("form");
  form.method = "POST";
  form.enctype = "text/plain";
  form.action = url;
  const input = document.createElement("input");
  input.name = JSON.stringify({name, pad: ""}).slice(0, -2);
  input.value = '"}';
  form.appendChild(input);
  document.body.appendChild(form);
  form.submit();
}
"""


@pytest_asyncio.fixture(loop_scope="session")  # with the tests (tests/e2e/conftest.py)
async def attacker_origin() -> AsyncIterator[str]:
    """A second server on 127.0.0.1 (another port): the other origin's page."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>prize draw</title><body><p>You won!</p>")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    app = Starlette(routes=[Route("/", page), Route("/favicon.ico", favicon)])
    async for base_url, _server in serve_asgi(app):
        yield base_url


async def guest_state(
    http: httpx.AsyncClient, guest_page: Page, room: dict[str, Any], key: str
) -> dict[str, Any]:
    """What the attacks could change: the name the guest's cookie shows, whether the guest's
    key still works, and how many photos the room holds (pending ones included)."""
    token = room["token"]
    me = await guest_page.evaluate(
        "async (url) => (await fetch(url, {credentials: 'same-origin'})).json()",
        f"/api/rooms/{token}/me",
    )
    by_key = await http.get(f"/api/rooms/{token}/me", headers={"X-Participant-Key": key})
    host = await http.get(f"/api/rooms/{token}/host", headers=host_headers(room))
    assert host.status_code == 200, host.text
    counts = host.json()
    return {
        "name": me["name"],
        "key_works": by_key.status_code == 200,
        "images": counts["image_count"] + counts.get("pending_count", 0),
    }


async def test_page_of_another_origin_cannot_act_with_the_guest_cookie(
    live_server: Any, browser: Browser, attacker_origin: str
) -> None:
    base = live_server.base_url
    console = ConsoleLog()  # the guest's page only: the attacker's shows its refusals
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        room = await create_room(http, "Board meeting", passcode=PASSCODE)
        token = room["token"]
        context = await phone_context(browser)
        guest = console.watch(await context.new_page(), "guest")
        await open_room(guest, room)
        async with guest.expect_response(
            lambda r: r.url.endswith("/participants") and r.request.method == "POST"
        ) as joined:
            await join(guest, "Grace", passcode=PASSCODE)
        key = (await (await joined.value).json())["participant_key"]
        before = await guest_state(http, guest, room, key)
        assert before == {"name": "Grace", "key_works": True, "images": 0}

        attacker = await context.new_page()
        await attacker.goto(attacker_origin + "/")
        ws_url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        live = await attacker.evaluate(WEBSOCKET_ATTACK, [ws_url, token])
        assert live["connected"] is False and "open" not in live["seen"], live

        polling_url = f"{base}/socket.io/?EIO=4&transport=polling"
        # Long-polling answers carry no CORS headers for another origin: nothing to read.
        polling = await attacker.evaluate(POLLING_ATTACK, polling_url)
        assert polling["readable"] is False, polling

        participants = f"{base}/api/rooms/{token}/participants"
        uploads = f"{base}/api/rooms/{token}/images"
        photo = list(make_image_bytes("jpeg", size=(320, 240)))
        attacks = {
            "text/plain rejoin as Mallory": (participants, REJOIN_FETCH, [participants, "Mallory"]),
            "no-cors multipart upload": (uploads, UPLOAD_FETCH, [uploads, photo]),
            "text/plain form re-key": (participants, REJOIN_FORM, [participants, "Grace"]),
        }
        outcomes: dict[str, tuple[int, dict[str, Any]]] = {}
        for label, (url, script, args) in attacks.items():
            async with attacker.expect_response(lambda r, url=url: r.url == url) as answered:
                await attacker.evaluate(script, args)
            status = (await answered.value).status
            outcomes[label] = (status, await guest_state(http, guest, room, key))
        assert outcomes == {label: (403, before) for label in attacks}, outcomes

        # The guest's own page still works: a rename from the room's page goes through.
        renamed = await guest.evaluate(
            """async (url) => (await fetch(url, {
                method: "PATCH", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({name: "Grace H."}),
            })).status""",
            f"/api/rooms/{token}/me",
        )
        assert renamed == 200
        assert (await guest_state(http, guest, room, key))["name"] == "Grace H."
        await context.close()
    assert console.errors == [], console.errors
