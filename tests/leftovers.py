"""Checks that a failed request left nothing behind: no file in the data folder's upload,
staging or media areas beyond what was there before, and no image row."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from web.database import Database
from web.schema import images, room_events
from web.settings import Settings


def stored_files(settings: Settings) -> set[str]:
    """Every file under the data folder's image areas, as paths relative to it."""
    found: set[str] = set()
    for area in ("uploads", "staging", "media", "direct"):
        root = settings.data_dir / area
        if root.exists():
            found.update(
                str(path.relative_to(settings.data_dir))
                for path in root.rglob("*")
                if path.is_file()
            )
    return found


async def row_counts(settings: Settings) -> tuple[int, int]:
    """(images, room events) rows in the database of ``settings``."""
    database = Database(settings)
    try:
        async with database.read() as connection:
            image_rows = await connection.scalar(select(func.count()).select_from(images))
            event_rows = await connection.scalar(select(func.count()).select_from(room_events))
        return int(image_rows or 0), int(event_rows or 0)
    finally:
        await database.close()


class Snapshot:
    """Files and rows at one moment, to compare with a later one."""

    def __init__(self, files: set[str], rows: tuple[int, int]) -> None:
        self.files = files
        self.rows = rows

    @classmethod
    async def take(cls, settings: Settings) -> Snapshot:
        return cls(stored_files(settings), await row_counts(settings))

    async def assert_unchanged(self, settings: Settings) -> None:
        later = await Snapshot.take(settings)
        assert later.files == self.files, f"files left behind: {later.files - self.files}"
        assert later.rows == self.rows, f"rows changed: {self.rows} -> {later.rows}"


def media_dirs(data_dir: Path) -> list[Path]:
    """The published image folders under ``data_dir``."""
    media = data_dir / "media"
    return sorted(media.iterdir()) if media.exists() else []
