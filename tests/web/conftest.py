"""Fixtures of the web tests: a real SMTP server (aiosmtpd) for the mail tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.web.smtp_inbox import Inbox, free_port


@pytest.fixture(scope="module")
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    """One plain aiosmtpd server for the module's tests: its inbox and port."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=30)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp_inbox: tuple[Inbox, int]) -> Inbox:
    """The module server's inbox, emptied for this test."""
    box = smtp_inbox[0]
    box.received.clear()
    box.refuse.clear()
    return box
