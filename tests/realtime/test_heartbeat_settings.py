"""The heartbeat a server advertises in the Engine.IO open packet is the one it keeps: the
Engine.IO server tells clients its ping interval in whole seconds, so a fractional interval is
refused at start-up instead of being advertised truncated (1.5 s as 1000 ms)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import SettingsFactory, run_server
from tests.realtime.raw_engineio import RawSession
from web.settings import Settings


def test_fractional_ping_interval_is_refused(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValidationError, match="whole number of seconds"):
        make_settings(ping_interval_seconds=1.5)


def test_fractional_ping_interval_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGESHARK_PING_INTERVAL_SECONDS", "2.5")
    with pytest.raises(ValidationError, match="whole number of seconds"):
        Settings()


async def test_open_packet_advertises_the_configured_heartbeat(
    make_settings: SettingsFactory,
) -> None:
    # 3.0 is accepted: a whole number of seconds written as a float.
    settings = make_settings(ping_interval_seconds=3.0, ping_timeout_seconds=4.5)
    async for server in run_server(settings):
        session = await RawSession.open(server.base_url)
        await session.close()
        assert session.open_packet["pingInterval"] == 3000
        assert session.open_packet["pingTimeout"] == 4500
