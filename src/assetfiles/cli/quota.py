"""``assetfiles quota set|clear`` and ``assetfiles usage``: what organizations may store and do store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import click

from assetfiles.cli.options import build_settings, data_dir_option, with_services
from assetfiles.model import Quota
from assetfiles.server.rendering import usage_json
from assetfiles.service.quotas import MAX_BYTES

T = TypeVar("T")


@click.group("quota")
def quota_group() -> None:
    """Set or clear what an organization may store (enforced on every upload path)."""


@quota_group.command("set")
@click.option("--org", required=True, help="Organization id.")
@click.option(
    "--max-total-bytes", type=click.IntRange(0, MAX_BYTES), default=None, help="All its contents together."
)
@click.option(
    "--max-file-bytes", type=click.IntRange(0, MAX_BYTES), default=None, help="Its largest content."
)
@click.option("--content-type", "content_types", multiple=True,
              help="An allowed media type or 'type/*'; repeat for several. Default: any.")  # fmt: skip
@data_dir_option
def quota_set(
    org: str,
    max_total_bytes: int | None,
    max_file_bytes: int | None,
    content_types: tuple[str, ...],
    data_dir: Path | None,
) -> None:
    """Replace the organization's quota with these limits (an option left out: no limit there)."""
    quota = Quota(max_total_bytes, max_file_bytes, content_types or None)
    with_services(build_settings(data_dir=data_dir), lambda services: services.quotas.set(org, quota))
    click.echo(f"quota of {org} set")


@quota_group.command("clear")
@click.option("--org", required=True, help="Organization id.")
@data_dir_option
def quota_clear(org: str, data_dir: Path | None) -> None:
    """Remove the organization's quota."""
    with_services(build_settings(data_dir=data_dir), lambda services: services.quotas.set(org, None))
    click.echo(f"quota of {org} cleared")


@click.command("usage")
@click.option("--org", default=None, help="Only this organization.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@data_dir_option
def usage_command(org: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Bytes and contents each organization stores, against its quota."""
    for usage in with_services(
        build_settings(data_dir=data_dir), lambda services: services.quotas.usage(org)
    ):
        record = usage_json(usage)
        if as_json:
            click.echo(json.dumps(record))
            continue
        quota = usage.quota
        limit = f" of {quota.max_total_bytes}" if quota and quota.max_total_bytes is not None else ""
        click.echo(f"{usage.org_id}\t{usage.stored_bytes}{limit} bytes\t{usage.contents} contents")
