"""Prometheus metrics, safe with several worker processes.

``assetfiles serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before its workers
start, so every worker writes its samples there and ``/metrics`` (answered by any worker) adds
them up. Without it (tests, one process embedded elsewhere) the default registry is used.
Label values are always from bounded sets: faces, methods, statuses, operations the server
names; never a path, a name or anything else a client chooses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Methods counted by name; any other (a client may send any token as a method) counts as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The server's metrics; one instance per process (prometheus-client registers them globally)."""

    _instance: Metrics | None = None

    def __init__(self) -> None:
        self.requests = Counter(
            "assetfiles_requests", "Requests answered", ["face", "operation", "method", "status"]
        )
        self.duration = Histogram(
            "assetfiles_request_duration_seconds", "Time to answer, body included", ["face"], buckets=_BUCKETS
        )
        self.bytes_sent = Counter("assetfiles_bytes_sent", "Response body bytes", ["face"])
        self.bytes_received = Counter("assetfiles_bytes_received", "Request body bytes", ["face"])
        self.uploads_in_flight = Gauge(
            "assetfiles_uploads_in_flight", "Uploads being received", multiprocess_mode="livesum"
        )
        self.backend_errors = Counter(
            "assetfiles_backend_errors",
            "Failures of the catalog, the blob store or the rate-limit storage",
            ["backend"],
        )
        self.token_requests = Counter(
            "assetfiles_enos_token_requests", "EnOS token service answers", ["operation", "outcome"]
        )
        self._requests: dict[tuple[str, str, str, int], Any] = {}
        self._per_face: dict[str, tuple[Any, Any, Any]] = {}

    @classmethod
    def get(cls) -> Metrics:
        """The process's metrics, created on first use (by create_app, when metrics are on)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @classmethod
    def active(cls) -> Metrics | None:
        """The metrics when this process serves them, else None (nothing to record)."""
        return cls._instance

    def observe_request(
        self, face: str, operation: str, method: str, status: int, duration: float, received: int, sent: int
    ) -> None:
        # Label lookups cost more than the increments: children are cached per label set
        # (the sets are bounded, see the module's docstring).
        if method not in METHODS:
            method = "OTHER"
        key = (face, operation, method, status)
        requests = self._requests.get(key)
        if requests is None:
            requests = self._requests[key] = self.requests.labels(face, operation, method, str(status))
        requests.inc()
        per_face = self._per_face.get(face)
        if per_face is None:
            per_face = self._per_face[face] = (
                self.duration.labels(face),
                self.bytes_sent.labels(face),
                self.bytes_received.labels(face),
            )
        per_face[0].observe(duration)
        if sent:
            per_face[1].inc(sent)
        if received:
            per_face[2].inc(received)


async def metrics_endpoint(request: Request) -> Response:
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@contextmanager
def upload_in_flight() -> Iterator[None]:
    metrics = Metrics.active()
    if metrics is None:
        yield
        return
    metrics.uploads_in_flight.inc()
    try:
        yield
    finally:
        metrics.uploads_in_flight.dec()


def count_backend_error(error: BaseException) -> None:
    """Count an unexpected failure that came from the catalog or the blob store."""
    metrics = Metrics.active()
    if metrics is None:
        return
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, SQLAlchemyError):
        metrics.backend_errors.labels("catalog").inc()
    elif isinstance(error, OSError) or type(error).__module__.startswith(("botocore", "aiobotocore")):
        metrics.backend_errors.labels("blobs").inc()


def count_token_request(operation: str, outcome: str) -> None:
    metrics = Metrics.active()
    if metrics is not None:
        metrics.token_requests.labels(operation, outcome).inc()
