"""The browser assets under a build-versioned prefix: every page links its scripts and styles
under ``/static/<build id>/``, each module's relative imports resolve under that same prefix,
versioned answers are immutable, the unversioned ``/static/...`` still answers (revalidated),
and a build id this replica does not run finds nothing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import AppClient
from web.assets import (
    BUILD_ID_CHARS,
    UNVERSIONED_CACHE_CONTROL,
    VERSIONED_CACHE_CONTROL,
    build_id,
)

ASSET_LINK = re.compile(
    r'<(?:script|link)\b[^>]*?(?:src|href)="(?:http://testserver)?(/static/[^"]+)"'
)
RELATIVE_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.{1,2}/[^"']+)["']""", re.M
)


async def _room_pages(client: AppClient) -> list[str]:
    created = await client.http.post("/api/rooms", json={"title": "Assets"})
    assert created.status_code == 201
    token = created.json()["token"]
    pages = ["/", f"/r/{token}", f"/r/{token}/wall", f"/r/{token}/host", f"/r/{token}/card"]
    # The API reference page and the admin page (its sign-in form when signed out) link
    # assets too, and so do the account links' pages and the account pages; the last ones,
    # signed in.
    return [
        *pages,
        "/docs",
        "/verify?token=t",
        "/reset?token=t",
        "/admin",
        "/signin",
        "/signup",
        *SIGNED_IN_PAGES,
    ]


SIGNED_IN_PAGES = ("/account", "/rooms")
"""Pages that send a signed-out visitor to ``/signin``: fetched after signing in."""


async def _sign_in(client: AppClient) -> None:
    account = {"email": "assets@example.org", "password": "assets password"}
    assert (await client.http.post("/api/accounts", json=account)).status_code == 201
    assert (await client.http.post("/api/session", json=account)).status_code == 200


async def test_pages_link_assets_under_the_build_prefix_and_imports_stay_under_it(
    client: AppClient,
) -> None:
    prefix = f"/static/{build_id(client.settings.static_dir)}/"
    assert len(prefix) == len("/static//") + BUILD_ID_CHARS
    pending: list[str] = []
    for page in await _room_pages(client):
        if page == SIGNED_IN_PAGES[0]:
            await _sign_in(client)
        answer = await client.http.get(page)
        assert answer.status_code == 200, page
        links = ASSET_LINK.findall(answer.text)
        assert links, f"{page} links no asset"
        assert [link for link in links if not link.startswith(prefix)] == [], page
        pending += links
    # Follow every module's relative imports: each resolves under the same prefix and exists.
    seen: set[str] = set()
    modules = 0
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        answer = await client.http.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["cache-control"] == VERSIONED_CACHE_CONTROL, url
        if url.endswith(".js") and "/vendor/" not in url:
            modules += 1
            for target in RELATIVE_IMPORT.findall(answer.text):
                imported = urlsplit(urljoin(url, target)).path
                assert imported.startswith(prefix), (url, target)
                pending.append(imported)
    # Every module of static/js is reached from some page, so all of them were checked.
    assert modules == len(list((client.settings.static_dir / "js").glob("*.js")))


async def test_unversioned_and_foreign_build_urls(client: AppClient) -> None:
    unversioned = await client.http.get("/static/js/api.js")
    assert unversioned.status_code == 200
    assert unversioned.headers["cache-control"] == UNVERSIONED_CACHE_CONTROL
    versioned = await client.http.get(f"/static/{build_id(client.settings.static_dir)}/js/api.js")
    assert versioned.content == unversioned.content
    # Another build's prefix (a replica running the previous release would get this request
    # for the new one): nothing, so no older file is ever cached as this build's.
    other = "0" * BUILD_ID_CHARS
    assert other != build_id(client.settings.static_dir)
    foreign = await client.http.get(f"/static/{other}/js/api.js")
    assert foreign.status_code == 404
    assert "immutable" not in foreign.headers.get("cache-control", "")


@pytest.mark.parametrize("change", ["content", "name"])
def test_build_id_changes_with_any_file(tmp_path: Path, change: str) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("export const a = 1;\n")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "b.css").write_text("body {}\n")
    before = build_id(tmp_path)
    assert before == build_id(tmp_path)  # deterministic
    if change == "content":
        (tmp_path / "css" / "b.css").write_text("body { margin: 0 }\n")
    else:
        (tmp_path / "js" / "a.js").rename(tmp_path / "js" / "c.js")
    assert build_id(tmp_path) != before
    assert build_id(tmp_path / "missing") == build_id(tmp_path / "missing")
