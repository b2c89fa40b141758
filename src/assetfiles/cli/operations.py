"""``assetfiles config show|reference`` and ``assetfiles migrate``: what an operator runs by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from assetfiles.cli.options import build_settings, data_dir_option
from assetfiles.config import CONFIG_ENV, SECRET_FIELDS, Settings, shown_settings


@click.group("config")
def config_group() -> None:
    """Inspect the settings: the effective ones, or the reference of all of them."""


@config_group.command("show")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of TOML.")
def show_command(data_dir: Path | None, as_json: bool) -> None:
    """The effective settings (options, environment, config file, defaults), secrets masked."""
    shown = shown_settings(build_settings(data_dir=data_dir))
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for name, value in shown.items():
        if value is not None:
            click.echo(f"{name} = {json.dumps(value)}")


def settings_reference() -> str:
    """The settings as a Markdown table, generated from the settings model (docs/operations.md)."""
    rows = [
        "| setting (TOML key) | environment | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default: Any = field.default
        shown = "(generated)" if name in SECRET_FIELDS else "" if default is None else f"`{default}`"
        if isinstance(default, Path):
            shown = f"`{default}`"
        description = (field.description or "").replace("|", "\\\\|")
        rows.append(f"| `{name}` | `ASSETFILES_{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows) + f"\n\nThe file is named by `--config FILE` or `{CONFIG_ENV}`.\n"


@config_group.command("reference")
def reference_command() -> None:
    """Every setting, its environment variable, default and meaning (Markdown)."""
    click.echo(settings_reference(), nl=False)


@click.command("migrate")
@data_dir_option
def migrate_command(data_dir: Path | None) -> None:
    """Bring the catalog's schema to this version's (serve does it too, unless told not to)."""
    from sqlalchemy.engine import make_url

    from assetfiles.service.migration import upgrade_catalog

    settings = build_settings(data_dir=data_dir)
    current = upgrade_catalog(settings)
    where = make_url(settings.catalog_url).render_as_string(hide_password=True)
    click.echo(f"catalog {where} is at revision {current}")


@click.command("backup")
@data_dir_option
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
def backup_command(data_dir: Path | None, destination: Path) -> None:
    """Copy the catalog (online, while serving), the blobs and the server key into DESTINATION.

    Restore by using DESTINATION as the data directory; check it with ``assetfiles fsck --verify``.
    """
    from assetfiles.errors import AssetfilesError
    from assetfiles.service.backup import backup

    settings = build_settings(data_dir=data_dir)
    try:
        report = backup(settings, destination)
    except AssetfilesError as exc:
        raise click.UsageError(exc.message) from None
    blobs = f"{report.blobs} blobs ({report.blob_bytes} bytes)"
    key = "server key" if report.key_copied else "(the server key is in your settings: keep it with them)"
    click.echo(f"backup in {report.destination}: catalog, {blobs}, {key}")
