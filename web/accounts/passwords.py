"""Password hashing: argon2id through argon2-cffi, off the event loop, a bounded number at once.

The parameters are argon2-cffi's default profile, RFC 9106's second recommended option
("low memory": t=3, m=64 MiB, p=4); bench/passwords.py measures them and
docs/decisions/0026-password-hashing.md says why. Each hash holds 64 MiB while it runs, so a
flood of sign-ins must not run them all at once: at most ``at_once`` run, the rest wait.
"""

from __future__ import annotations

import base64
import secrets

from anyio import CapacityLimiter, to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY


def new_hasher() -> PasswordHasher:
    """The hasher of stored passwords: argon2id with RFC 9106's low-memory parameters
    (t=3 passes, m=65536 KiB, p=4 lanes, 16-byte salt, 32-byte tag)."""
    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def stand_in_hash(hasher: PasswordHasher) -> str:
    """A PHC string with ``hasher``'s parameters and a random salt and tag: verifying against it
    costs what verifying a stored hash costs (argon2 recomputes the tag from the salt and
    parameters, then compares), and no password matches it (a 256-bit random tag). Made
    without hashing anything."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")  # PHC: standard base64, no padding

    salt, tag = secrets.token_bytes(hasher.salt_len), secrets.token_bytes(hasher.hash_len)
    return (
        f"$argon2{hasher.type.name.lower()}$v=19"
        f"$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
        f"${b64(salt)}${b64(tag)}"
    )


class Passwords:
    """Hashes and checks passwords in worker threads (argon2-cffi releases the GIL).

    :param at_once: most hashes computed at the same time (``IMAGESHARK_PASSWORD_HASHES_AT_ONCE``).
    :param hasher: the argon2 hasher (tests may pass cheaper parameters).
    """

    def __init__(self, at_once: int, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or new_hasher()
        self.limiter = CapacityLimiter(at_once)
        self._stand_in = stand_in_hash(self.hasher)

    async def hash(self, password: str) -> str:
        """The PHC string (``$argon2id$v=19$m=65536,t=3,p=4$<salt>$<tag>``) of ``password``."""
        return await to_thread.run_sync(self.hasher.hash, password, limiter=self.limiter)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the PHC string ``stored`` (False for a malformed one)."""
        return await to_thread.run_sync(self._verify, stored, password, limiter=self.limiter)

    async def verify_nothing(self, password: str) -> None:
        """Spend what :meth:`verify` spends, against a hash no password matches: sign-in of an
        unknown address costs the same time as of a known one (no enumeration by timing)."""
        await self.verify(self._stand_in, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
