"""``assetfiles gc`` and ``assetfiles fsck``: run on the server machine, against the catalog and blobs.

Exit codes: 0 nothing wrong (or everything collected), 1 fsck found problems, 2 usage error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from assetfiles.cli.options import build_settings, data_dir_option, require_data_dir
from assetfiles.service.composition import Services
from assetfiles.service.maintenance import FsckReport, GcReport


async def _gc(data_dir: Path | None, grace: float, dry_run: bool) -> GcReport:
    settings = build_settings(data_dir=data_dir)
    require_data_dir(settings)
    services = await Services.open(settings)
    try:
        return await services.maintenance.gc(grace_seconds=grace, dry_run=dry_run)
    finally:
        await services.close()


async def _fsck(data_dir: Path | None, verify: bool) -> FsckReport:
    settings = build_settings(data_dir=data_dir)
    require_data_dir(settings)
    services = await Services.open(settings)
    try:
        return await services.maintenance.fsck(verify=verify)
    finally:
        await services.close()


@click.command("gc")
@data_dir_option
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    help="Keep unreferenced blobs younger than this many seconds (uploads in flight write bytes first).",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def gc_command(data_dir: Path | None, grace: float, dry_run: bool) -> None:
    """Remove blobs that no content uses, stale temporary files and expired resumable uploads."""
    report = asyncio.run(_gc(data_dir, grace, dry_run))
    if dry_run:
        for sha256 in report.would_remove:
            click.echo(f"would remove {sha256}")
    click.echo(
        f"{report.blobs} blob(s) examined, {report.removed} removed ({report.removed_bytes:,} bytes), "
        f"{report.too_recent} unreferenced but younger than {grace:g} s, "
        f"{report.temporaries} stale temporary file(s) removed, "
        f"{report.spool_dirs} abandoned EnOS upload spool(s) removed, "
        f"{report.expired_uploads} expired resumable upload(s) {'found' if dry_run else 'removed'}"
    )


@click.command("fsck")
@data_dir_option
@click.option("--verify", is_flag=True, help="Also read every blob and check its sha256 (reads all bytes).")
@click.option("--json", "json_lines", is_flag=True, help="One JSON object per problem, then a summary.")
def fsck_command(data_dir: Path | None, verify: bool, json_lines: bool) -> None:
    """Report contents whose bytes are missing, of the wrong length or (with --verify) corrupt."""
    report = asyncio.run(_fsck(data_dir, verify))
    for problem in report.problems:
        stored = problem.content
        if json_lines:
            fields = {
                "problem": problem.kind,
                "org": stored.org_id,
                "content": stored.id,
                "name": stored.name,
            }
            click.echo(json.dumps({**fields, "sha256": stored.sha256, "detail": problem.detail}))
        else:
            click.echo(f"{problem.kind:8} {stored.org_id}/{stored.id} ({stored.name}): {problem.detail}")
    summary = {"contents": report.contents, "blobs": report.blobs_checked, "problems": len(report.problems),
               "verified_bytes": report.verified_bytes}  # fmt: skip
    if json_lines:
        click.echo(json.dumps({"summary": summary}))
    else:
        click.echo(
            f"{report.contents} content(s), {report.blobs_checked} blob(s) checked"
            + (f", {report.verified_bytes:,} bytes hashed" if verify else "")
            + f": {len(report.problems)} problem(s)"
        )
    sys.exit(1 if report.problems else 0)
