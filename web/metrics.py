"""Prometheus metrics of one replica, served at ``/metrics``.

Every collector lives in the app's own registry (built by ``create_app`` and handed to
:class:`Metrics` and to the live side's fan-out), never in prometheus_client's process-wide
default registry, so several apps in one process (tests) keep separate counts.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.errors import error_response
from web.wire import Answer, Binary, Operation

# Rendition and upload-to-emit times on this kind of machine run from ~20 ms (small photos)
# to ~1 s (queued 12 MP photos); buckets resolve that range.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)


class MailMetrics:
    """The mail outbox's collectors (web/mail/).

    :param registry: the app's registry.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queued = Counter(
            "imageshark_mail_queued", "Mails put in the outbox by this replica.", registry=registry
        )
        self.sent = Counter(
            "imageshark_mail_sent",
            "Mails this replica's sender handed to the SMTP server.",
            registry=registry,
        )
        self.failed = Counter(
            "imageshark_mail_failed",
            "Mails this replica's sender gave up on: 'refused' (a permanent 5xx) or "
            "'expired' (temporary failures until the attempt or age limit).",
            ["reason"],
            registry=registry,
        )
        self.attempt_failures = Counter(
            "imageshark_mail_attempt_failures",
            "Delivery attempts that failed temporarily and will be retried.",
            registry=registry,
        )
        self.backlog = Gauge(
            "imageshark_mail_outbox_depth",
            "Mails queued in the outbox (every replica's), as of this sender's last pass.",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "imageshark_mail_outbox_oldest_seconds",
            "Age of the oldest mail still queued, in seconds (0: none), as of this sender's "
            "last pass.",
            registry=registry,
        )

    def set_backlog(self, count: int, oldest: datetime | None, now: datetime) -> None:
        """Show ``count`` queued mails, the oldest queued at ``oldest`` (None: none)."""
        self.backlog.set(count)
        self.oldest_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


class Metrics:
    """The replica's collectors.

    :param connected_clients: returns the number of Socket.IO clients connected here.
    :param active_rooms: returns the number of rooms with a client connected here.
    :param registry: the app's registry, where other parts (the fan-out's counters) have
        registered theirs; served whole. None: a new one.
    :param fast_paths: for each accelerator over library internals (``"fanout"``, ``"guard"``,
        ``"http"``), whether it runs (realtime/internals.py).
    """

    def __init__(
        self,
        connected_clients: Callable[[], float],
        active_rooms: Callable[[], float],
        registry: CollectorRegistry | None = None,
        fast_paths: Mapping[str, bool] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        fast_path = Gauge(
            "imageshark_fast_path",
            "1 for the live mode of each accelerator over library internals: 'direct' (ours) "
            "or 'stock' (the library's own path, after its start-up probe found an internal "
            "missing); 0 for the other mode.",
            ["path", "mode"],
            registry=self.registry,
        )
        for path, direct in (fast_paths or {}).items():
            fast_path.labels(path=path, mode="direct").set(1 if direct else 0)
            fast_path.labels(path=path, mode="stock").set(0 if direct else 1)
        Gauge(
            "imageshark_connected_clients",
            "Socket.IO clients connected to this replica.",
            registry=self.registry,
        ).set_function(connected_clients)
        Gauge(
            "imageshark_active_rooms",
            "Rooms with at least one client connected to this replica.",
            registry=self.registry,
        ).set_function(active_rooms)
        self.uploads = Counter(
            "imageshark_uploads",
            "Upload requests by outcome (created, duplicate, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "imageshark_upload_bytes",
            "Bytes of stored original images.",
            registry=self.registry,
        )
        self.rendition_seconds = Histogram(
            "imageshark_rendition_seconds",
            "Time to make an image's renditions inside a worker, in seconds.",
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.upload_to_emit_seconds = Histogram(
            "imageshark_upload_to_emit_seconds",
            "Time from an upload request's arrival to its image_added being emitted, seconds.",
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )

    def route(self, token: SecretStr | None = None) -> Route:
        """The ``GET /metrics`` route (see :meth:`operation`)."""
        return self.operation(token).route()

    def operation(self, token: SecretStr | None = None) -> Operation:
        """The ``GET /metrics`` operation, in Prometheus' text format.

        :param token: when given, requests must carry ``Authorization: Bearer <token>``; others
            get ``401 metrics_token_required`` (no or another header) without any metric.
        """
        expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

        async def metrics(request: Request) -> Response:
            if expected is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected
            ):
                return error_response(
                    401,
                    "metrics_token_required",
                    "Metrics need Authorization: Bearer <IMAGESHARK_METRICS_TOKEN>.",
                    {"WWW-Authenticate": "Bearer"},
                )
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return Operation(
            "GET",
            "/metrics",
            metrics,
            "metrics",
            "Prometheus metrics",
            "operations",
            {200: Answer("Prometheus text format.", Binary("text/plain"))},
            {401: ("metrics_token_required",)} if token is not None else {},
            security=("metricsToken",) if token is not None else ("anonymous",),
        )
