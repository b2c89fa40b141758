"""``assetfiles quota set|clear`` and ``assetfiles usage``: what organizations may store and do store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from assetfiles.cli.options import build_settings, data_dir_option
from assetfiles.config import Settings
from assetfiles.errors import AssetfilesError
from assetfiles.model import Quota
from assetfiles.service.context import Services
from assetfiles.service.quotas import Usage

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    async def run() -> T:
        services = await Services.open(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(run())
    except AssetfilesError as exc:
        raise click.UsageError(exc.message) from None


@click.group("quota")
def quota_group() -> None:
    """Set or clear what an organization may store (enforced on every upload path)."""


@quota_group.command("set")
@click.option("--org", required=True, help="Organization id.")
@click.option(
    "--max-total-bytes", type=click.IntRange(min=0), default=None, help="All its contents together."
)
@click.option("--max-file-bytes", type=click.IntRange(min=0), default=None, help="Its largest content.")
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
    _run(build_settings(data_dir=data_dir), lambda services: services.quotas.set(org, quota))
    click.echo(f"quota of {org} set")


@quota_group.command("clear")
@click.option("--org", required=True, help="Organization id.")
@data_dir_option
def quota_clear(org: str, data_dir: Path | None) -> None:
    """Remove the organization's quota."""
    _run(build_settings(data_dir=data_dir), lambda services: services.quotas.set(org, None))
    click.echo(f"quota of {org} cleared")


def usage_record(usage: Usage) -> dict[str, object]:
    quota = usage.quota
    return {
        "org": usage.org_id,
        "storedBytes": usage.stored_bytes,
        "contents": usage.contents,
        "quota": None
        if quota is None
        else {
            "maxTotalBytes": quota.max_total_bytes,
            "maxFileBytes": quota.max_file_bytes,
            "contentTypes": list(quota.content_types) if quota.content_types is not None else None,
        },
    }


@click.command("usage")
@click.option("--org", default=None, help="Only this organization.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@data_dir_option
def usage_command(org: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Bytes and contents each organization stores, against its quota."""
    for usage in _run(build_settings(data_dir=data_dir), lambda services: services.quotas.usage(org)):
        record = usage_record(usage)
        if as_json:
            click.echo(json.dumps(record))
            continue
        quota = usage.quota
        limit = f" of {quota.max_total_bytes}" if quota and quota.max_total_bytes is not None else ""
        click.echo(f"{usage.org_id}\t{usage.stored_bytes}{limit} bytes\t{usage.contents} contents")
