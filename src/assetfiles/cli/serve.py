"""``assetfiles serve``: migrate the catalog, then run the ASGI app under granian."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import click

from assetfiles.cli.errors import SetupError
from assetfiles.cli.options import build_settings, data_dir_option
from assetfiles.config import Settings
from assetfiles.service.migration import upgrade_catalog

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on. granian binds with SO_REUSEPORT, so a second
    server on a busy port would start without a word and take half the connections (answering
    them from its own data directory)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no reason to refuse
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SetupError(
                f"port {port} on {host} is in use ({exc.strerror}): another server runs there; "
                "stop it or choose another --port"
            ) from None


def run_server(settings: Settings) -> None:
    """Blocking: serve until interrupted. The worker processes read the settings from the environment."""
    from granian import Granian
    from granian.constants import Interfaces

    upgrade_catalog(settings)
    _ = settings.signing_key  # create the key file once, before several workers race to
    os.environ.update(settings.to_environment())
    if settings.metrics:
        # Each worker writes its samples here and /metrics, answered by any of them, adds them up.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROCESS_ENV] = str(metrics_dir.resolve())
    tls = {}
    if settings.tls_cert is not None and settings.tls_key is not None:
        for name, path in (("tls_cert", settings.tls_cert), ("tls_key", settings.tls_key)):
            if not path.is_file():
                raise SetupError(f"{name}: no file at {path}")
        tls = {"ssl_cert": settings.tls_cert.resolve(), "ssl_key": settings.tls_key.resolve()}
    Granian(
        "assetfiles.server.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_access=False,  # assetfiles writes its own access log, without query strings
        backlog=2048,
        backpressure=settings.max_connections_per_worker,
        # A worker that dies (SIGKILL, the OOM killer) is replaced; the others keep serving.
        respawn_failed_workers=True,
        respawn_interval=1.0,
        **tls,  # type: ignore[arg-type]
    ).serve()


@click.command("serve")
@data_dir_option
@click.option("--host", default=None, help="Address to listen on. Env: ASSETFILES_HOST. Default: 127.0.0.1.")
@click.option(
    "--port", type=int, default=None, help="Port to listen on. Env: ASSETFILES_PORT. Default: 8000."
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes. Default: 1.")
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]), default=None,
              help="Log lines as text or JSON. Default: auto (text on a terminal).")  # fmt: skip
@click.option("--access-log/--no-access-log", default=None, help="One log line per request. Default: on.")
def serve_command(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_format: str | None,
    access_log: bool | None,
) -> None:
    """Serve the GraphQL API, the EnOS file API, signed transfers, device uploads and the console."""
    settings = build_settings(
        data_dir=data_dir, host=host, port=port, workers=workers, log_format=log_format, access_log=access_log
    )
    ensure_port_free(settings.host, settings.port)
    scheme = "https" if settings.tls_cert else "http"
    click.echo(
        f"assetfiles: data in {settings.data_dir.resolve()}, listening on {scheme}://{settings.host}:{settings.port}"
    )
    if settings.console:
        click.echo(f"assetfiles: web console on {scheme}://{settings.host}:{settings.port}/console")
    run_server(settings)
