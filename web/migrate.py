"""Schema migrations through Alembic, callable from the CLI and from start-up.

The migration scripts live in ``web/migrations``; this module only points Alembic at them and
at the configured database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from web.database import Database
from web.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def alembic_config(settings: Settings) -> Config:
    """An Alembic configuration for ``settings``' database (no alembic.ini needed)."""
    config = _scripts_config()
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (blocking; call from a thread in async code).

    Safe to run from several replicas at once on PostgreSQL (advisory lock in ``env.py``).
    Raises the driver's error if the database is unreachable.
    """
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)


def head_revision() -> str:
    """The newest migration's revision id (what ``upgrade`` brings a database to)."""
    head = ScriptDirectory.from_config(_scripts_config()).get_current_head()
    assert head is not None
    return head


async def schema_revision(database: Database) -> str | None:
    """The revision the database's schema is at (Alembic's ``alembic_version``), or None for
    a database never migrated."""
    try:
        async with database.read() as connection:
            row = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).first()
    except DBAPIError:
        return None
    return str(row[0]) if row else None
