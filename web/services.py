"""The replica's collaborators, built once by ``create_app`` and reached via ``request.state``."""

from __future__ import annotations

from dataclasses import dataclass

import socketio
from starlette.requests import HTTPConnection

from realtime.bus import RoomEventBus
from web.accounts.oidc import OidcClient
from web.accounts.service import AccountService
from web.admin.service import AdminService
from web.database import Database
from web.images.direct import DirectUploads
from web.images.service import ImageService
from web.mail.mailer import Mailer
from web.media import MediaStore
from web.rooms.cohosts import CohostService
from web.rooms.qr import QrCodes
from web.rooms.service import RoomService
from web.rooms.views import LanAddress
from web.settings import Settings
from web.signing import SigningSecret


@dataclass(frozen=True)
class Services:
    """Everything a request handler may need; lifetimes are managed by the app's lifespan."""

    settings: Settings
    database: Database
    bus: RoomEventBus
    rooms: RoomService
    cohosts: CohostService
    accounts: AccountService
    admin: AdminService
    images: ImageService
    uploads: DirectUploads
    media: MediaStore
    sio: socketio.AsyncServer
    signing: SigningSecret
    qr: QrCodes
    lan: LanAddress
    mailer: Mailer
    oidc: OidcClient | None = None
    """Organisation sign-on's client; None when it is not configured."""

    @property
    def signing_key(self) -> bytes:
        """The deployment's signing key (cookies, presigned links); see :mod:`web.signing`."""
        return self.signing.key


def services(connection: HTTPConnection) -> Services:
    """The :class:`Services` of the app serving ``connection`` (set by the lifespan)."""
    found = connection.state.services
    assert isinstance(found, Services)
    return found
