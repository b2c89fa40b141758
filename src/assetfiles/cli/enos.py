"""``assetfiles enos download``: fetch EnOS files by ``enos-connect://`` URI into a folder.

The same engine as ``sync`` behind the EnOS source (resume, retries, verification, atomic
rename, a manifest so a second run fetches only what changed) and the same exit codes: 0 all
fetched, 1 some failed (listed), 2 usage error or refused application.
"""

from __future__ import annotations

from pathlib import Path

import click

from assetfiles.cli.clientconfig import config_option
from assetfiles.cli.output import run_and_report
from assetfiles.cli.sync import check_writable, choose_listener
from assetfiles.client import EnosOwner, Fatal, SyncOptions, enos_download
from assetfiles.model import ENOS_FILE_URI


@click.group("enos")
def enos_group() -> None:
    """Fetch files from the EnOS Connection Service file API (assetfiles' or EnOS's own)."""


@enos_group.command("download")
@config_option("enos")
@click.argument("arguments", nargs=-1, metavar="FILE_URI... DEST")
@click.option("--url", envvar="ASSETFILES_ENOS_URL", help="API gateway base URL. Env: ASSETFILES_ENOS_URL.")
@click.option(
    "--app-key", envvar="ASSETFILES_ENOS_APP_KEY", help="Application key. Env: ASSETFILES_ENOS_APP_KEY."
)
@click.option(
    "--app-secret",
    envvar="ASSETFILES_ENOS_APP_SECRET",
    help="Application secret. Env: ASSETFILES_ENOS_APP_SECRET.",
)
@click.option(
    "--org", envvar="ASSETFILES_ENOS_ORG", help="Organization id (orgId). Env: ASSETFILES_ENOS_ORG."
)
@click.option("--asset", "asset_id", help="The asset the files belong to.")
@click.option(
    "--product", "product_key", help="productKey of the device the files belong to (with --device)."
)
@click.option("--device", "device_key", help="deviceKey of the device the files belong to (with --product).")
@click.option("--category", type=click.Choice(["feature", "ota"]), default="feature", show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--json", "json_lines", is_flag=True, help="JSON lines events on stdout, then a summary.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
def download_command(
    arguments: tuple[str, ...], url: str | None, app_key: str | None, app_secret: str | None, org: str | None,
    asset_id: str | None, product_key: str | None, device_key: str | None, category: str, concurrency: int,
    json_lines: bool, quiet: bool, progress: bool | None,
) -> None:  # fmt: skip
    """Download FILE_URIs (enos-connect://...) of an asset or device into DEST, named by URI."""
    if len(arguments) < 2:
        raise click.UsageError("give at least one FILE_URI and DEST")
    *uris, dest = arguments
    for name, value in (("--url", url), ("--app-key", app_key), ("--app-secret", app_secret), ("--org", org)):
        if not value:
            raise click.UsageError(
                f"missing {name} (or its environment variable, or the [enos] config section)"
            )
    assert url and app_key and app_secret and org
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    if not asset_id and bool(product_key) != bool(device_key):
        raise click.UsageError("--product and --device go together")
    if not asset_id and not product_key:
        raise click.UsageError("give --asset, or --product and --device")
    for uri in uris:
        if not ENOS_FILE_URI.fullmatch(uri):
            raise click.BadParameter(
                f"{uri!r} is not an enos-connect://<id>.<ext> URI", param_hint="FILE_URI"
            )
    destination = Path(dest)
    check_writable(destination)
    owner = EnosOwner(asset_id, product_key, device_key)
    listener = choose_listener(json_lines, quiet, progress)
    options = SyncOptions(concurrency=concurrency)
    run_and_report(
        lambda: enos_download(
            url, app_key, app_secret, org, owner, uris, destination, category=category, options=options,
            listener=listener,
        ),
        listener,
        json_lines=json_lines,
        quiet=quiet,
        fatal=(Fatal,),
    )  # fmt: skip
