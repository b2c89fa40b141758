"""``assetfiles demo``: a server with demo data, ready for the documented queries."""

from __future__ import annotations

import asyncio
from importlib.resources import as_file, files
from pathlib import Path

import click

from assetfiles.cli.admin import apply_path, print_report
from assetfiles.cli.options import build_settings
from assetfiles.cli.serve import run_server

DEMO_TOKEN = "tok-acme-demo-read-write"  # noqa: S105 - published demo credential, in demo.yaml


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("assetfiles-demo"),
    show_default=True,
    help="Where the demo catalog and blobs go.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True, help="Start the server after seeding.")
def demo_command(data_dir: Path, port: int, serve: bool) -> None:
    """Seed the demo organization (asset a-pump-7) and serve it."""
    settings = build_settings(data_dir=data_dir, port=port)
    with as_file(files("assetfiles.demo").joinpath("demo.yaml")) as fixture:
        report = asyncio.run(apply_path(settings, fixture))
    click.echo(f"demo data in {settings.data_dir.resolve()}")
    print_report(report)
    base = f"http://{settings.host}:{settings.port}"
    click.echo(
        f"""
Try the documented workflow (token {DEMO_TOKEN}):

  curl -s {base}/api/graphql -H 'Authorization: Automation {DEMO_TOKEN}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"query":"{{ asset(id: \\"a-pump-7\\") {{ id name signals {{ channel {{ id }} }} }} }}"}}'
"""
    )
    if serve:
        run_server(settings)
