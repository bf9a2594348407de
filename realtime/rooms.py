"""Socket.IO room names. Every room name is built here, never formatted inline."""

from __future__ import annotations


def room_name(room_id: int) -> str:
    """The Socket.IO room holding the live clients of ImageShark room ``room_id``."""
    return f"room:{room_id}"
