"""The service's signing secret: what participant cookies and presigned download links are
signed with (itsdangerous HMAC signatures, one salt per purpose).

Every replica must sign with the same key. ``IMAGESHARK_SECRET_KEY`` sets it; otherwise the first
replica to start makes a random one and stores it in the database, where the others find it, so
the embedded default and a fleet of replicas both work without configuration.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from web.database import Database
from web.schema import service_secrets

SIGNING_SECRET_NAME = "signing"
SECRET_BYTES = 32  # 256 random bits, stored as 64 hex characters.


class SigningSecret:
    """The signing key of this deployment, loaded once at start-up.

    :param configured: ``IMAGESHARK_SECRET_KEY``, or None to use the database's.
    """

    def __init__(self, configured: SecretStr | None) -> None:
        self._key: bytes | None = (
            configured.get_secret_value().encode() if configured is not None else None
        )

    async def load(self, database: Database) -> None:
        """Read the stored key, making and storing one if there is none yet.

        Safe when replicas start together: the insert of the loser fails on the primary key
        and it reads the winner's key. Does nothing when a key was configured.
        """
        if self._key is not None:
            return
        stored = await self._stored(database)
        if stored is None:
            try:
                async with database.transaction() as connection:
                    await connection.execute(
                        insert(service_secrets).values(
                            name=SIGNING_SECRET_NAME, value=secrets.token_hex(SECRET_BYTES)
                        )
                    )
            except IntegrityError:
                pass  # another replica stored one first
            stored = await self._stored(database)
        assert stored is not None
        self._key = stored.encode()

    @staticmethod
    async def _stored(database: Database) -> str | None:
        async with database.read() as connection:
            value = await connection.scalar(
                select(service_secrets.c.value).where(service_secrets.c.name == SIGNING_SECRET_NAME)
            )
        return str(value) if value is not None else None

    @property
    def key(self) -> bytes:
        """The key bytes. Raises RuntimeError before :meth:`load` (a wiring error)."""
        if self._key is None:
            raise RuntimeError("the signing secret is used before the app's start-up loaded it")
        return self._key
