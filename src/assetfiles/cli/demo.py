"""``assetfiles demo``: seed the demo world, serve it on a free port, and sync the demo asset from it.

It shows the whole loop in one command: the embedded server (SQLite + local blobs) and the
downloader meeting over real HTTP, exactly as a user's own scripts would.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from importlib.resources import as_file, files
from pathlib import Path

import click

from assetfiles.cli.admin import apply_path, print_report
from assetfiles.cli.background import BackgroundServer
from assetfiles.cli.options import build_settings
from assetfiles.cli.output import Quiet, summary_line
from assetfiles.cli.progress import ProgressBars
from assetfiles.cli.serve import ensure_port_free
from assetfiles.client import Fatal, Listener, sync

DEMO_TOKEN = "tok-acme-demo-read-write"  # noqa: S105 - published demo credential, in demo.yaml
DEMO_ASSET = "a-pump-7"


@click.command("demo")
@click.option(
    "--dir",
    "base",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("assetfiles-demo"),
    show_default=True,
    help="Where the demo server's data (server/) and the synced copy (mirror/) go.",
)
@click.option("--serve", is_flag=True, help="Keep serving after the sync (on --port) until Ctrl-C.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port for --serve."
)
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
def demo_command(base: Path, serve: bool, port: int, progress: bool | None) -> None:
    """Seed the demo organization, start a server, and sync asset a-pump-7 into DIR/mirror."""
    settings = build_settings(data_dir=base / "server")
    if serve:
        ensure_port_free("127.0.0.1", port)
    with as_file(files("assetfiles.demo").joinpath("demo.yaml")) as fixture:
        report = asyncio.run(apply_path(settings, fixture))
    click.echo(f"demo data in {settings.data_dir.resolve()}")
    print_report(report)
    mirror = base / "mirror"
    base.mkdir(parents=True, exist_ok=True)
    log = base / "server.log"
    # own_group=False: the terminal's Ctrl-C and hang-up reach the server as they reach the demo
    background = BackgroundServer(settings.data_dir, log=log, port=port if serve else None, own_group=False)
    with background as server:
        click.echo(f"server on {server.base_url} (log: {log})")
        click.echo(f"syncing {DEMO_ASSET} into {mirror}/")
        show = sys.stderr.isatty() if progress is None else progress
        bars = ProgressBars() if show else None
        listener: Listener = bars or Quiet()
        started = time.monotonic()
        try:
            with bars or contextlib.nullcontext():
                result = asyncio.run(
                    sync(server.base_url, DEMO_TOKEN, [DEMO_ASSET], mirror, listener=listener)
                )
        except Fatal as exc:
            raise click.ClickException(f"sync failed: {exc}") from None
        click.echo(summary_line(result, time.monotonic() - started))
        for path in sorted(p for p in (mirror / DEMO_ASSET).rglob("*") if p.is_file()):
            if ".assetfiles" not in path.parts:
                click.echo(f"  {path}  ({path.stat().st_size:,} bytes)")
        url = server.base_url if serve else "http://127.0.0.1:8000"
        click.echo(
            f"""
To keep the server up and sync by hand (a second sync fetches nothing):

  assetfiles demo --serve            # serves {url} until Ctrl-C
  assetfiles sync {DEMO_ASSET} {mirror} --url {url} --token {DEMO_TOKEN}

The documented GraphQL workflow answers on {url}/api/graphql with
the header 'Authorization: Automation {DEMO_TOKEN}'.

The web console is on {url}/console: sign in with {DEMO_TOKEN}
(or tok-acme-demo-read-only, which sees no write controls)."""
        )
        if serve:
            click.echo("serving until Ctrl-C")
            with contextlib.suppress(KeyboardInterrupt):
                assert server.process is not None
                server.process.wait()
        if not result.ok:
            sys.exit(1)
