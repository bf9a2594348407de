"""The browser assets (static/), served under a prefix that names their build.

The pages' modules import each other relatively (``./api.js``), so a version in the entry
script's query string would not reach the modules it imports. Instead every asset is served under
``/static/<build id>/...``, the build id a digest of the whole folder's contents: a page links
``/static/<id>/js/wall.js``, its imports resolve under the same prefix, and after an upgrade a new
page gets a new prefix, so a browser never mixes module versions. Those responses are immutable
for a year. Another replica that still runs the previous build serves no file under the new id
(404, never cached) rather than its own older one. The unversioned ``/static/...`` keeps working
for anything that links it, revalidated on every use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUILD_ID_CHARS = 12
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE_CONTROL = "no-cache"


def build_id(directory: Path) -> str:
    """A digest of every file under ``directory`` (relative paths and bytes), as
    :data:`BUILD_ID_CHARS` hex characters; the same for an empty or missing folder.

    Blocking file reads (the folder is well under a megabyte): call once at start-up."""
    digest = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            relative = path.relative_to(directory).as_posix().encode()
            content = path.read_bytes()
            digest.update(b"%d:%s%d:" % (len(relative), relative, len(content)))
            digest.update(content)
    return digest.hexdigest()[:BUILD_ID_CHARS]


class _CachedStaticFiles(StaticFiles):
    """Static files whose successful answers carry a fixed ``Cache-Control``."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.cache_control = cache_control

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = self.cache_control
        return response


def static_mounts(directory: Path, build: str) -> list[Mount]:
    """The routes serving ``directory``: ``/static/<build>/...`` named ``static`` (what
    templates' ``url_for('static', path=...)`` yields), immutable; and the unversioned
    ``/static/...`` named ``static_unversioned``, revalidated on every use.

    :param directory: the assets folder (``Settings.static_dir``); it may be missing.
    :param build: its :func:`build_id`.
    """
    return [
        Mount(
            f"/static/{build}",
            _CachedStaticFiles(directory, VERSIONED_CACHE_CONTROL),
            name="static",
        ),
        Mount(
            "/static",
            _CachedStaticFiles(directory, UNVERSIONED_CACHE_CONTROL),
            name="static_unversioned",
        ),
    ]
