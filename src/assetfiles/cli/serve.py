"""``assetfiles serve``: migrate the catalog, then run the ASGI app under granian."""

from __future__ import annotations

import os
from pathlib import Path

import click

from assetfiles.cli.options import build_settings, data_dir_option
from assetfiles.config import Settings
from assetfiles.store.database import migrate


def run_server(settings: Settings, *, workers: int = 1, access_log: bool = False) -> None:
    """Blocking: serve until interrupted. The worker processes read the settings from the environment."""
    from granian import Granian
    from granian.constants import Interfaces

    migrate(settings.catalog_url)
    _ = settings.signing_key  # create the key file once, before several workers race to
    os.environ.update(settings.to_environment())
    Granian(
        "assetfiles.server.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=access_log,
    ).serve()


@click.command("serve")
@data_dir_option
@click.option("--host", default=None, help="Address to listen on. Env: ASSETFILES_HOST. Default: 127.0.0.1.")
@click.option(
    "--port", type=int, default=None, help="Port to listen on. Env: ASSETFILES_PORT. Default: 8000."
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve_command(
    data_dir: Path | None, host: str | None, port: int | None, workers: int, access_log: bool
) -> None:
    """Serve the GraphQL API, signed transfers and device uploads."""
    settings = build_settings(data_dir=data_dir, host=host, port=port)
    click.echo(
        f"assetfiles: data in {settings.data_dir.resolve()}, listening on http://{settings.host}:{settings.port}"
    )
    run_server(settings, workers=workers, access_log=access_log)
