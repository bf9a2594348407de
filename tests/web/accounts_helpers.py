"""Helpers of the host-account tests: signing up and in, and a session's cookie header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.conftest import AppClient
from web.accounts.repository import AccountRepository
from web.database import Database
from web.rooms.repository import RoomRepository
from web.settings import Settings

PASSWORD = "correct horse battery staple"
SESSION_COOKIE = "imageshark_session"


async def sign_up(
    client: AppClient, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    """``POST /api/accounts``; the answer."""
    return await client.http.post(
        "/api/accounts", json={"email": email, "password": password, **extra}
    )


async def sign_in(
    client: AppClient,
    email: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /api/session``; the answer. The client's cookie jar is left empty: tests pass
    each session's cookie by hand (:func:`session`), so that accounts never mix."""
    response = await client.http.post(
        "/api/session", json={"email": email, "password": password}, headers=headers
    )
    client.http.cookies.clear()
    return response


async def signed_up_session(
    client: AppClient, email: str, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """Sign up ``email`` and sign in; the headers carrying its session cookie."""
    assert (await sign_up(client, email)).status_code == 201
    response = await sign_in(client, email, headers=headers)
    assert response.status_code == 200, response.text
    return session(response)


def session(response: httpx.Response) -> dict[str, str]:
    """The ``Cookie`` header of the session a sign-in answer set."""
    token = response.cookies[SESSION_COOKIE]
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


@asynccontextmanager
async def repositories(
    settings: Settings,
) -> AsyncIterator[tuple[AccountRepository, RoomRepository]]:
    """The account and room repositories on the test app's database (their own pool), for
    what the API does not do yet: disabling accounts, adding co-hosts."""
    database = Database(settings)
    try:
        yield AccountRepository(database), RoomRepository(database)
    finally:
        await database.close()
