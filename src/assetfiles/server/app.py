"""The ASGI application: routes of every face over one set of services."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from assetfiles.config import Settings
from assetfiles.logs import configure_logging
from assetfiles.server import enos, enos_device, murano, tus
from assetfiles.server.devices import device_upload
from assetfiles.server.events import events
from assetfiles.server.graphql.endpoint import graphql_endpoint
from assetfiles.server.hot_routes import HotRoutes
from assetfiles.server.middleware import RequestTracking
from assetfiles.server.proxies import ProxyHeaders
from assetfiles.server.throttle import Throttle
from assetfiles.server.transfer import download, upload
from assetfiles.service.composition import Services

#: How often counted sign-in failures are written to the audit log.
AUDIT_FLUSH_SECONDS = 10.0


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """Readiness: 200 when the catalog answers at the current schema and blobs can be written."""
    services: Services = request.app.state.services
    checks = await services.health.readiness()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer in the same JSON shape as every other error."""
    assert isinstance(exc, HTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    body = {"error": {"code": codes.get(exc.status_code, "BAD_REQUEST"), "message": exc.detail}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def graphql_get(request: Request) -> Response:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": "send GraphQL requests as POST with a JSON body",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        },
        status_code=405,
        headers={"Allow": "POST"},
    )


def create_app(settings: Settings | None = None) -> RequestTracking:
    """The server: every face's routes, inside the request middleware (ids, access log, metrics)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = await Services.open(settings)
        app.state.throttle = Throttle(settings)
        # Everything allocated so far (schema, SQL metadata, compiled statements) lives as long as
        # the process: moving it out of the collector's reach keeps the frequent collections that
        # a listing's thousands of short-lived objects trigger from re-scanning it every time.
        gc.collect()
        gc.freeze()
        services = app.state.services
        background = [asyncio.create_task(services.audit.flush_every(AUDIT_FLUSH_SECONDS))]
        if settings.retention_interval_seconds:
            background.append(
                asyncio.create_task(services.retention.run_every(settings.retention_interval_seconds))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await app.state.services.close()  # flushes the audit counters one last time

    routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/api/graphql", graphql_endpoint, methods=["POST"]),
        Route("/api/graphql", graphql_get, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/transfer/content/{content_id}", download, methods=["GET", "HEAD"]),
        Route("/transfer/uploads/{content_id}", upload, methods=["PUT"]),
        Route("/transfer/uploads/{content_id}", tus.reserved, methods=["POST", "OPTIONS"]),
        Route("/files/", tus.collection, methods=["POST", "OPTIONS"]),
        Route("/files", tus.collection, methods=["POST", "OPTIONS"]),
        Route("/files/{upload_id}", tus.resource, methods=["HEAD", "PATCH", "DELETE", "POST", "OPTIONS"]),
        Route("/api/devices/{product_id}/{device_id}/content", device_upload, methods=["PUT", "POST"]),
        Route("/apim-token-service/v2.0/token/get", enos.token_get, methods=["POST"]),
        Route("/apim-token-service/v2.0/token/refresh", enos.token_refresh, methods=["POST"]),
        Route("/connect-service/v2.1/files", enos.files, methods=["GET", "HEAD", "POST"]),
        Route("/connect-service/v2.1/integration", enos.integration, methods=["POST"]),
        Route("/openapi.json", enos.openapi, methods=["GET"]),
        Route("/auth/{product_key}/{device_key}", enos_device.login, methods=["POST"]),
        Route(
            "/multipart/sys/{product_key}/{device_key}/thing/measurepoint/post",
            enos_device.measurepoint_post,
            methods=["POST"],
        ),
        Route(
            "/multipart/sys/{product_key}/{device_key}/file/download", enos_device.download, methods=["GET"]
        ),
        Route(
            "/multipart/sys/{product_key}/{device_key}/file/download/url",
            enos_device.download_url,
            methods=["GET"],
        ),
        Route("/multipart/sys/{product_key}/{device_key}/file/delete", enos_device.delete, methods=["POST"]),
        Route("/murano/{product_id}/provision/activate", murano.activate, methods=["POST"]),
        Route("/murano/{product_id}/provision/download", murano.download, methods=["GET", "HEAD"]),
        Route("/provision/activate", murano.activate, methods=["POST"]),
        Route("/provision/download", murano.download, methods=["GET", "HEAD"]),
    ]
    if settings.console:
        from assetfiles.server.console import console_routes

        routes.extend(console_routes(settings))
    metrics = None
    if settings.metrics:
        from assetfiles.server.metrics import Metrics, metrics_endpoint

        metrics = Metrics.get()
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    proxies = ProxyHeaders(settings.trusted_proxies) if settings.trusted_proxies else None
    return RequestTracking(HotRoutes(app), access_log=settings.access_log, metrics=metrics, proxies=proxies)


def routes_of(app: RequestTracking) -> Starlette:
    """The Starlette application inside what :func:`create_app` returns (its routes, its state
    and its lifespan), for tests and tools that drive it in process."""
    hot = app.app
    assert isinstance(hot, HotRoutes)
    return hot.app
