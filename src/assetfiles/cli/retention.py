"""``assetfiles retention show|apply``: the policies, and deleting what they say to (or listing it)."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from pathlib import Path

import click

from assetfiles.cli.options import build_settings, data_dir_option, with_services
from assetfiles.model import now_ms
from assetfiles.service.composition import Services
from assetfiles.service.retention import Doomed


@click.group("retention")
def retention_group() -> None:
    """Retention policies (set in fixtures): show them, or apply them now."""


@retention_group.command("show")
@click.option("--org", default=None, help="Only this organization's policies.")
@data_dir_option
def show_command(org: str | None, data_dir: Path | None) -> None:
    """Every retention policy, one JSON object per line."""
    settings = build_settings(data_dir=data_dir)

    for policy in with_services(settings, lambda services: services.retention.policies(org)):
        click.echo(json.dumps({
            "org": policy.org_id, "asset": policy.asset_id, "contentType": policy.content_type,
            "namePrefix": policy.name_prefix, "deleteAfterDays": policy.delete_after_days,
            "keepPerAsset": policy.keep_per_target,
        }))  # fmt: skip


@retention_group.command("apply")
@click.option("--org", default=None, help="Only this organization's policies.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@data_dir_option
def apply_command(org: str | None, dry_run: bool, as_json: bool, data_dir: Path | None) -> None:
    """Delete every content a policy says has been kept long enough (each deletion audited)."""
    settings = build_settings(data_dir=data_dir)

    now = now_ms()

    def work(services: Services) -> Awaitable[list[Doomed]]:
        return services.retention.plan(now, org) if dry_run else services.retention.apply(now, org)

    done = with_services(settings, work)
    verb = "would delete" if dry_run else "deleted"
    for item in done:
        if as_json:
            click.echo(json.dumps({"org": item.org_id, "id": item.content_id, "name": item.name,
                                   "reason": item.reason, "deleted": not dry_run}))  # fmt: skip
        else:
            click.echo(f"{verb} {item.org_id}/{item.content_id} {item.name!r}: {item.reason}")
    if not as_json:
        click.echo(f"{len(done)} content(s) {verb}")
