"""One replica's collaborators: built from the settings, started and stopped in order.

:func:`build_replica` is the composition root's first half (the second, :func:`web.app.create_app`,
puts the HTTP routes, error handlers and middleware around it): it picks the implementation of
each interface the settings ask for (SQLite or PostgreSQL, local media, in-process or Redis
bus and presence, memory or Redis rate limits) and wires the services to them. Nothing here
reads a request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from anyio import to_thread
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from realtime.bus import LocalBus, RedisBus, RoomEventBus, redis_client
from realtime.delivery import LiveDelivery
from realtime.fanout import FanOutCounters
from realtime.namespace import RoomNamespace
from realtime.presence import LocalPresence, Presence, RedisPresence
from realtime.server import create_live_server
from web.accounts.oidc import OidcClient
from web.accounts.passwords import Passwords
from web.accounts.pending_digest import PendingDigest
from web.accounts.repository import AccountRepository
from web.accounts.service import AccountService
from web.admin.repository import AdminRepository
from web.admin.service import AdminService
from web.database import Database
from web.event_log import DatabaseRoomLog
from web.images.direct import RETRY_FOR_SECONDS, DirectUploads
from web.images.rendition_queue import RenditionQueue
from web.images.repository import ImageRepository
from web.images.service import ImageService
from web.images.upload_repository import UploadRepository
from web.images.views import image_view
from web.mail.mailer import Mailer
from web.mail.outbox import Outbox
from web.mail.sender import MailSender
from web.mail.smtp import SmtpDelivery
from web.media import LocalMedia, MediaStore, media_cache_control
from web.metrics import MailMetrics, Metrics
from web.migrate import upgrade
from web.object_media import ObjectMedia
from web.object_store import open_object_store
from web.origins import OriginPolicy
from web.pipeline import RenditionPool
from web.rate_limits import RateLimiter
from web.rooms.cohosts import CohostService
from web.rooms.invite_repository import InviteRepository
from web.rooms.qr import QrCodes
from web.rooms.repository import RoomRepository
from web.rooms.service import RoomService
from web.rooms.views import LanAddress
from web.services import Services
from web.settings import Settings
from web.signing import SigningSecret
from web.storage import RECOVERY_PERIOD_SECONDS, LocalImageStore

logger = logging.getLogger(__name__)


@dataclass
class Replica:
    """Everything one replica runs on, and its start-up and shutdown order.

    :ivar services: what request handlers reach (``request.state.services``).
    :ivar metrics: the replica's Prometheus collectors (served at ``/metrics``).
    :ivar origins: the allowed browser origins (the HTTP guard and the live handshake).
    """

    settings: Settings
    database: Database
    media: MediaStore
    bus: RoomEventBus
    presence: Presence
    redis: Redis | None
    rate_limits: RateLimiter
    signing: SigningSecret
    images: ImageRepository
    uploads: DirectUploads
    delivery: LiveDelivery
    namespace: RoomNamespace
    services: Services
    metrics: Metrics
    origins: OriginPolicy
    queue: RenditionQueue | None = None
    oidc: OidcClient | None = None
    mail_sender: MailSender | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Migrate (when ``migrate_on_start``), load the signing secret, finish uploads a
        crashed process left staged, start the renderers, the bus and the namespace, resume
        the direct uploads left processing, start the mail sender (with SMTP), then the
        periodic catch-up (a bus that ``may_lose_events``) and recovery.

        :raises sqlalchemy.exc.DBAPIError: the database is unreachable; redis errors likewise.
        """
        if self.settings.migrate_on_start:
            await to_thread.run_sync(upgrade, self.settings)
        await self.signing.load(self.database)
        await self._recover()
        await self.media.start()
        await self.bus.start(
            self.delivery.deliver, self.delivery.catch_up, self.namespace.host_revoked
        )
        await self.namespace.start()
        await self.uploads.start()
        if self.mail_sender is not None:
            await self.mail_sender.start()
        if self.bus.may_lose_events:
            self._tasks.append(asyncio.create_task(self._periodic_catch_up()))
        self._tasks.append(asyncio.create_task(self._periodic_recovery()))

    async def stop(self) -> None:
        """Stop the periodic tasks and the mail sender, let the direct uploads being processed
        finish, then close everything in the reverse order of use."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self.mail_sender is not None:
            await self.mail_sender.close()
        await self.uploads.close()
        if self.oidc is not None:
            await self.oidc.close()
        if self.queue is not None:
            await self.queue.close()
        await self.presence.close()
        await self.bus.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.delivery.close()
        await self.media.close()
        await self.rate_limits.close()
        await self.database.close()

    async def _recover(self) -> None:
        published, removed = await self.media.recover(
            self.images.existing_keys, self.uploads.pending
        )
        if published or removed:
            logger.warning(
                "recovered interrupted uploads: %d finished, %d removed", published, removed
            )

    async def _periodic_catch_up(self) -> None:
        """Every ``catch_up_seconds``, emit logged events the bus lost (LiveDelivery.catch_up)."""
        while True:
            await asyncio.sleep(self.settings.catch_up_seconds)
            try:
                await self.delivery.catch_up()
            except Exception:  # database briefly down: try again next period
                logger.warning("periodic catch-up failed", exc_info=True)

    async def _periodic_recovery(self) -> None:
        """Now and again, finish the uploads of replicas that died and were not restarted (on
        NFS their locks are only freed when the lease expires, after this one started): the
        staged ones, and the direct uploads left processing; and remove the direct uploads
        never completed whose URL expired."""
        while True:
            await asyncio.sleep(RECOVERY_PERIOD_SECONDS)
            try:
                await self._recover()
                await self.uploads.resume_stale()
                await self.uploads.sweep()
            except Exception:  # database briefly down: try again next period
                logger.warning("recovery of interrupted uploads failed", exc_info=True)


def _event_transport(settings: Settings) -> tuple[RoomEventBus, Presence, Redis | None]:
    """The bus and presence the settings ask for: Redis (one client shared by both) when
    ``redis_url`` is set, else in-process; and that client, for closing."""
    if settings.redis_url is None:
        return LocalBus(), LocalPresence(), None
    redis = redis_client(settings.redis_url.get_secret_value())
    presence = RedisPresence(redis, settings.redis_prefix, ttl=settings.presence_ttl_seconds)
    return RedisBus(redis, settings.redis_prefix), presence, redis


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """The named rate limits, in Redis when ``redis_url`` is set (shared by every replica)."""
    return RateLimiter(
        {
            "upload": settings.upload_rate_limit,
            "anonymous_upload": settings.anonymous_upload_rate_limit,
            "join": settings.join_rate_limit,
            "create_room": settings.room_create_rate_limit,
            "open_join": settings.open_join_rate_limit,
            "code_lookup": settings.open_join_rate_limit,
            "sign_up": settings.sign_up_rate_limit,
            "sign_in_address": settings.sign_in_address_rate_limit,
            "sign_in_account": settings.sign_in_account_rate_limit,
            "verification_resend": settings.verification_resend_rate_limit,
            "password_reset_address": settings.password_reset_address_rate_limit,
            "password_reset_account": settings.password_reset_account_rate_limit,
        },
        settings.redis_url.get_secret_value() if settings.redis_url is not None else None,
        settings.redis_prefix,
    )


def build_media(settings: Settings, renditions: RenditionPool) -> MediaStore:
    """The image store the settings ask for: a local folder (``storage_url`` unset: the data
    folder; a path: that folder), or an object store whose request-temporary files go to the
    data folder."""
    location = settings.storage
    if location.folder is not None:
        return LocalMedia(LocalImageStore(location.folder), renditions)
    return ObjectMedia(
        open_object_store(settings),
        LocalImageStore(settings.data_dir / "scratch"),
        renditions,
        url_seconds=settings.media_url_seconds,
        media_base_url=settings.media_base_url,
        cache_control=media_cache_control(settings.media_max_age_seconds),
    )


def build_oidc_client(settings: Settings, signing: SigningSecret) -> OidcClient | None:
    """Organisation sign-on's client when ``oidc_issuer`` is set (with the client id and
    secret, which the settings require together), else None. Nothing is fetched here: the
    discovery document comes at the first sign-on."""
    if settings.oidc_issuer is None:
        return None
    assert settings.oidc_client_id is not None and settings.oidc_client_secret is not None
    return OidcClient(
        settings.oidc_issuer,
        settings.oidc_client_id,
        settings.oidc_client_secret,
        settings.oidc_scopes,
        signing,
    )


def rendition_queue(settings: Settings) -> RenditionQueue | None:
    """The Redis queue of direct uploads when ``rendition_queue`` is ``redis``, else None
    (the replica renders them itself)."""
    if settings.rendition_queue != "redis" or settings.redis_url is None:
        return None
    return RenditionQueue(
        settings.redis_url.get_secret_value(),
        settings.redis_prefix,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        timeout_seconds=job_timeout_seconds(settings),
    )


def build_renditions(settings: Settings, *, on_demand: bool = False) -> RenditionPool:
    """The rendition worker processes of a replica or an ``imageshark worker``, as the
    settings size them (not started).

    :param on_demand: start them at the first render instead of in ``start()``.
    """
    return RenditionPool(
        settings.rendition_workers,
        settings.rendition_queue_limit,
        room_queue_limit=settings.rendition_room_queue,
        timeout_seconds=settings.rendition_timeout_seconds,
        on_demand=on_demand,
    )


def build_upload_services(
    settings: Settings,
    *,
    database: Database,
    images: ImageRepository,
    room_rows: RoomRepository,
    rooms: RoomService,
    media: MediaStore,
    bus: RoomEventBus,
    rate_limits: RateLimiter,
    signing: SigningSecret,
    metrics: Metrics,
    queue: RenditionQueue | None,
    mailer: Mailer,
) -> tuple[ImageService, DirectUploads]:
    """The image rules and the direct uploads over them, built the same way for a replica
    and for an ``imageshark worker``, so that both admit and process uploads alike.

    :param queue: where ``complete`` enqueues with the Redis queue; None: processed in this
        process (the ``inline`` default, and the worker itself, which only consumes).
    :param mailer: queues the owner's digest of photos waiting for approval.
    :returns: (the image service, the direct uploads).
    """
    digest = PendingDigest(database, AccountRepository(database), mailer, settings)
    image_service = ImageService(
        database,
        images,
        rooms,
        media,
        bus,
        settings,
        metrics,
        rate_limits,
        on_pending=digest.photo_pending,
    )
    uploads = DirectUploads(
        image_service,
        UploadRepository(database),
        images,
        rooms,
        room_rows,
        media,
        signing,
        settings,
        queue,
    )
    return image_service, uploads


def build_mail(
    settings: Settings, database: Database, registry: CollectorRegistry
) -> tuple[Mailer, MailSender | None]:
    """The mailer features call and, when ``smtp_url`` is set, this replica's sender of the
    outbox over that server (not started); without it the mailer is not ``enabled`` and no
    sender runs.

    :returns: (the mailer, the sender or None).
    """
    metrics = MailMetrics(registry)
    server = settings.smtp
    if server is None:
        return Mailer(None, settings.mail_sender, metrics), None
    outbox = Outbox(database)
    sender = MailSender(outbox, SmtpDelivery(server), metrics)
    return Mailer(outbox, settings.mail_sender, metrics, sender.wake), sender


def job_timeout_seconds(settings: Settings) -> int:
    """Longest one job attempt may run, seconds: the passing-fault retries of an upload,
    then one rendition and a margin for the fetch and commit."""
    return int(RETRY_FOR_SECONDS + settings.rendition_timeout_seconds + 120)


def build_replica(
    settings: Settings, *, http_deadlines: bool = False, renditions_on_demand: bool = False
) -> Replica:
    """Build (not start) every collaborator of one replica for ``settings``.

    :param http_deadlines: whether the server runs web/connections.py's protocol; shown as
        ``imageshark_fast_path{path="http"}``.
    :param renditions_on_demand: start the rendition workers at the first upload instead of
        at start-up (see :class:`~web.pipeline.RenditionPool`).
    :returns: the replica; :meth:`Replica.start` opens it, :meth:`Replica.stop` closes it.
    """
    database = Database(settings)
    media = build_media(settings, build_renditions(settings, on_demand=renditions_on_demand))
    bus, presence, redis = _event_transport(settings)
    rate_limits = build_rate_limiter(settings)
    signing = SigningSecret(settings.secret_key)
    origins = OriginPolicy(settings.public_base_url, settings.allowed_origins)
    images = ImageRepository(database)
    room_rows = RoomRepository(database)
    passwords = Passwords(settings.password_hashes_at_once)
    registry = CollectorRegistry()  # everything /metrics serves
    mailer, mail_sender = build_mail(settings, database, registry)
    account_rows = AccountRepository(database)
    admin_rows = AdminRepository(database)
    accounts = AccountService(
        account_rows, passwords, rate_limits, settings, mailer, invites=admin_rows
    )
    rooms = RoomService(
        database,
        room_rows,
        images,
        settings,
        bus,
        rate_limits,
        signing,
        session_account=accounts.account_of_cookies,
    )
    sio, delivery, namespace, fast_paths = create_live_server(
        rooms.admit_live,
        DatabaseRoomLog(database, images, image_view),
        presence,
        ping_interval=settings.ping_interval_seconds,
        ping_timeout=settings.ping_timeout_seconds,
        replay_limit=settings.replay_limit,
        allowed_origin=origins.allows_handshake,
        connect_timeout=settings.connect_timeout_seconds,
        fanout_counters=FanOutCounters(registry),
    )
    metrics = Metrics(
        connected_clients=lambda: sum(len(room.clients) for room in delivery.rooms.values()),
        active_rooms=lambda: len(delivery.rooms),
        registry=registry,
        fast_paths={**fast_paths, "http": http_deadlines},
    )
    queue = rendition_queue(settings)
    image_service, uploads = build_upload_services(
        settings,
        database=database,
        images=images,
        room_rows=room_rows,
        rooms=rooms,
        media=media,
        bus=bus,
        rate_limits=rate_limits,
        signing=signing,
        metrics=metrics,
        queue=queue,
        mailer=mailer,
    )
    oidc = build_oidc_client(settings, signing)
    services = Services(
        settings=settings,
        database=database,
        bus=bus,
        rooms=rooms,
        cohosts=CohostService(InviteRepository(database), rooms, bus, settings),
        accounts=accounts,
        admin=AdminService(admin_rows, account_rows, rooms, media, settings.signup),
        images=image_service,
        uploads=uploads,
        media=media,
        sio=sio,
        signing=signing,
        qr=QrCodes(),
        lan=LanAddress(),
        oidc=oidc,
        mailer=mailer,
    )
    return Replica(
        settings=settings,
        database=database,
        media=media,
        bus=bus,
        presence=presence,
        redis=redis,
        rate_limits=rate_limits,
        signing=signing,
        images=images,
        uploads=uploads,
        delivery=delivery,
        namespace=namespace,
        services=services,
        metrics=metrics,
        origins=origins,
        queue=queue,
        oidc=oidc,
        mail_sender=mail_sender,
    )
