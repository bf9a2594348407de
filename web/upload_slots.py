"""A cap on the uploads one client address has in progress at once on this replica.

A request body that arrives slowly holds a connection, a buffer of up to about 1 MiB and
a spill file for as long as it lasts (docs/decisions/0016-open-uploads-per-address.md).
The rate limits count uploads started per minute, not uploads open, so this counts those.
Per replica and in memory: it bounds this process's resources, which is what it protects.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from web.errors import ApiError

RETRY_AFTER_SECONDS = 5


class UploadSlots:
    """Counts uploads in progress per client address.

    :param per_address: most uploads one address may have in progress at once (>= 1).
    """

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._active: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, address: str) -> Iterator[None]:
        """Count one upload of ``address`` for the duration of the ``with`` block.

        :raises ApiError: 429 ``too_many_uploads`` with ``Retry-After`` (seconds) when the
            address already has ``per_address`` uploads in progress.
        """
        if self._active[address] >= self.per_address:
            raise ApiError(
                429,
                "too_many_uploads",
                f"{self.per_address} uploads from your address are already in progress; "
                "please wait for one to finish.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._active[address] += 1
        try:
            yield
        finally:
            self._active[address] -= 1
            if not self._active[address]:
                del self._active[address]

    def in_progress(self, address: str) -> int:
        """How many uploads ``address`` has in progress now."""
        return self._active[address]
