"""SQL for host accounts, their sessions and their mailed tokens. All queries on ``accounts``,
``account_sessions`` and ``account_tokens`` live here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from web.database import Database
from web.schema import account_sessions, account_tokens, accounts


@dataclass(frozen=True, slots=True)
class Account:
    """An account row. ``email`` is normalised; ``password_hash`` is an argon2id PHC string."""

    id: int
    email: str
    name: str | None
    password_hash: str
    email_verified: bool
    is_admin: bool
    disabled: bool
    created_at: datetime
    notify_pending: bool = True


@dataclass(frozen=True, slots=True)
class AccountSession:
    """A signed-in browser of an account. Times are UTC."""

    id: int
    account_id: int
    device: str
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session and the account it belongs to (what a session cookie resolves to)."""

    session: AccountSession
    account: Account


@dataclass(frozen=True, slots=True)
class AccountToken:
    """A mailed single-use token (``purpose`` ``verify`` or ``reset``). Times are UTC;
    ``used_at`` is None while unused."""

    id: int
    purpose: str
    account_id: int
    expires_at: datetime
    used_at: datetime | None


class AccountRepository:
    """Reads and writes accounts and sessions.

    :param database: the replica's connection pool.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self, *, email: str, name: str | None, password_hash: str, now: datetime
    ) -> Account | None:
        """Insert an account; None when ``email`` already has one (nothing is changed)."""
        try:
            async with self.database.transaction() as connection:
                row = (
                    await connection.execute(
                        insert(accounts)
                        .values(email=email, name=name, password_hash=password_hash, created_at=now)
                        .returning(*accounts.c)
                    )
                ).one()
        except IntegrityError:
            return None
        return Account(**row._mapping)

    async def by_email(self, email: str) -> Account | None:
        """The account of the normalised ``email``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(select(accounts).where(accounts.c.email == email))
            ).first()
        return Account(**row._mapping) if row else None

    async def by_id(self, account_id: int) -> Account | None:
        """The account ``account_id``, or None."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(select(accounts).where(accounts.c.id == account_id))
            ).first()
        return Account(**row._mapping) if row else None

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        """Replace the stored hash (after a sign-in found it made with older parameters)."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash)
            )

    async def mark_email_verified(self, account_id: int) -> None:
        """Record that the account's address is verified (an organisation sign-on vouched)."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(email_verified=True)
            )

    async def add_token(
        self, *, purpose: str, account_id: int, token_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        """Store a mailed token of ``account_id`` (only its SHA-256, ``token_hash``); in the same
        transaction remove the account's tokens that expired before ``now``."""
        async with self.database.transaction() as connection:
            await connection.execute(
                delete(account_tokens).where(
                    account_tokens.c.account_id == account_id,
                    account_tokens.c.expires_at < now,
                )
            )
            await connection.execute(
                insert(account_tokens).values(
                    purpose=purpose,
                    account_id=account_id,
                    token_hash=token_hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def token(self, purpose: str, token_hash: str) -> AccountToken | None:
        """The token of ``purpose`` whose SHA-256 is ``token_hash``, or None (also when it is
        one of another purpose)."""
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(*_TOKEN_COLUMNS).where(
                        account_tokens.c.token_hash == token_hash,
                        account_tokens.c.purpose == purpose,
                    )
                )
            ).first()
        return AccountToken(**row._mapping) if row else None

    async def use_verification(self, token_id: int, account_id: int, now: datetime) -> bool:
        """Mark the verification token used and the account's address verified, together;
        False (nothing changed) when the token was used meanwhile."""
        async with self.database.transaction() as connection:
            if not await _use_token(connection, token_id, now):
                return False
            await connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(email_verified=True)
            )
        return True

    async def use_reset(
        self, token_id: int, account_id: int, password_hash: str, now: datetime
    ) -> bool:
        """In one transaction: mark the reset token used, set the new password hash, mark the
        address verified (the mailbox was reached) and end every session of the account.
        False (nothing changed) when the token was used meanwhile."""
        async with self.database.transaction() as connection:
            if not await _use_token(connection, token_id, now):
                return False
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash, email_verified=True)
            )
            await connection.execute(
                delete(account_sessions).where(account_sessions.c.account_id == account_id)
            )
        return True

    async def set_notify_pending(self, account_id: int, notify_pending: bool) -> None:
        """Whether the account is mailed the digest of photos waiting in its rooms."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(notify_pending=notify_pending)
            )

    async def set_disabled(self, account_id: int, disabled: bool) -> None:
        """Disable (or enable again) an account: a disabled one's sessions stop working and it
        cannot sign in."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(accounts).where(accounts.c.id == account_id).values(disabled=disabled)
            )

    async def add_session(
        self,
        *,
        account_id: int,
        token_hash: str,
        device: str,
        now: datetime,
        expired_before: datetime,
    ) -> AccountSession:
        """Insert a session of ``account_id`` and return it; in the same transaction remove
        the account's sessions last used at or before ``expired_before`` (they no longer
        work)."""
        async with self.database.transaction() as connection:
            await connection.execute(
                delete(account_sessions).where(
                    account_sessions.c.account_id == account_id,
                    account_sessions.c.last_used_at <= expired_before,
                )
            )
            row = (
                await connection.execute(
                    insert(account_sessions)
                    .values(
                        account_id=account_id,
                        token_hash=token_hash,
                        device=device,
                        created_at=now,
                        last_used_at=now,
                    )
                    .returning(*_SESSION_COLUMNS)
                )
            ).one()
        return AccountSession(**row._mapping)

    async def signed_in(self, token_hash: str) -> SignedIn | None:
        """The session whose token hashes to ``token_hash`` and its account, or None (whether
        it is still valid is the caller's rule)."""
        async with self.database.direct_read() as statements:
            row = await statements.first(_SIGNED_IN, {"token_hash": token_hash})
        if row is None:
            return None
        session = AccountSession(
            **{column.name: row[f"s_{column.name}"] for column in _SESSION_COLUMNS}
        )
        account = Account(**{column.name: row[f"a_{column.name}"] for column in accounts.c})
        return SignedIn(session=session, account=account)

    async def touch_session(self, session_id: int, now: datetime) -> None:
        """Record that the session was used at ``now``."""
        async with self.database.transaction() as connection:
            await connection.execute(
                update(account_sessions)
                .where(account_sessions.c.id == session_id)
                .values(last_used_at=now)
            )

    async def sessions_of(self, account_id: int, used_after: datetime) -> list[AccountSession]:
        """The account's sessions last used after ``used_after``, newest use first."""
        async with self.database.read() as connection:
            rows = await connection.execute(
                select(*_SESSION_COLUMNS)
                .where(
                    account_sessions.c.account_id == account_id,
                    account_sessions.c.last_used_at > used_after,
                )
                .order_by(account_sessions.c.last_used_at.desc(), account_sessions.c.id.desc())
            )
            return [AccountSession(**row._mapping) for row in rows]

    async def delete_session(self, account_id: int, session_id: int) -> bool:
        """Remove the session ``session_id`` of ``account_id``; whether there was one."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(account_sessions).where(
                    account_sessions.c.id == session_id,
                    account_sessions.c.account_id == account_id,
                )
            )
        return bool(result.rowcount)

    async def delete_sessions(self, account_id: int) -> int:
        """Remove every session of ``account_id``; how many there were."""
        async with self.database.transaction() as connection:
            result = await connection.execute(
                delete(account_sessions).where(account_sessions.c.account_id == account_id)
            )
        return int(result.rowcount)


async def _use_token(connection: AsyncConnection, token_id: int, now: datetime) -> bool:
    # The used_at condition makes two concurrent uses of one token succeed once.
    result = await connection.execute(
        update(account_tokens)
        .where(account_tokens.c.id == token_id, account_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)


_TOKEN_COLUMNS = (
    account_tokens.c.id,
    account_tokens.c.purpose,
    account_tokens.c.account_id,
    account_tokens.c.expires_at,
    account_tokens.c.used_at,
)
_SESSION_COLUMNS = (
    account_sessions.c.id,
    account_sessions.c.account_id,
    account_sessions.c.device,
    account_sessions.c.created_at,
    account_sessions.c.last_used_at,
)
# Every request with a session cookie runs this one: built once with a bound parameter, so the
# direct path compiles it once (docs/decisions/0013-upload-path-sql.md).
_SIGNED_IN = (
    select(
        *(column.label(f"s_{column.name}") for column in _SESSION_COLUMNS),
        *(column.label(f"a_{column.name}") for column in accounts.c),
    )
    .select_from(account_sessions.join(accounts, accounts.c.id == account_sessions.c.account_id))
    .where(account_sessions.c.token_hash == bindparam("token_hash"))
)
