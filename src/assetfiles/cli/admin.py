"""Administration on the server machine: ``apply`` fixtures and ``token create``.

These commands open the catalog directly (they are how the first credentials come to exist);
everything else goes through the HTTP API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import yaml

from assetfiles.cli.options import build_settings, data_dir_option
from assetfiles.config import Settings
from assetfiles.errors import AssetfilesError
from assetfiles.model import OBJECT_ID, Permission, check_identifier
from assetfiles.service.context import Services
from assetfiles.service.secrets import new_secret, token_hash
from assetfiles.service.seeding import ApplyReport, Fixture, apply_fixture
from assetfiles.store.catalog import Conflict


def load_fixture(path: Path) -> Fixture:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FIXTURE") from None
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not valid YAML: {exc}", param_hint="FIXTURE") from None
    try:
        return Fixture.parse(data)
    except AssetfilesError as exc:
        raise click.BadParameter(exc.message, param_hint="FIXTURE") from None


async def apply_path(settings: Settings, path: Path) -> ApplyReport:
    fixture = load_fixture(path)
    services = await Services.open(settings)
    try:
        return await apply_fixture(services, fixture, path.parent)
    finally:
        await services.close()


def print_report(report: ApplyReport) -> None:
    for change in report.changes:
        click.echo(f"  {change}")
    for note in report.notes:
        click.echo(f"  note: {note}")
    if not report.changes:
        click.echo("  nothing to change")
    for what, secret in report.generated_secrets:
        click.echo(f"  generated secret for {what} (shown once): {secret}")


@click.command("apply")
@click.argument("fixture", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
def apply_command(fixture: Path, data_dir: Path | None) -> None:
    """Create or update what FIXTURE (YAML) describes: organizations, tokens, devices, assets, files."""
    settings = build_settings(data_dir=data_dir)
    try:
        report = asyncio.run(apply_path(settings, fixture))
    except AssetfilesError as exc:
        raise click.BadParameter(exc.message, param_hint="FIXTURE") from None
    click.echo(f"applied {fixture} to {settings.data_dir.resolve()}")
    print_report(report)


@click.group("token")
def token_group() -> None:
    """Manage API ("Automation") tokens."""


async def _create_token(
    settings: Settings, org: str, name: str, secret: str, permissions: list[Permission]
) -> None:
    services = await Services.open(settings)
    try:
        if not await services.catalog.organization_exists(org):
            raise click.BadParameter(f"organization {org!r} does not exist", param_hint="--org")
        if await services.catalog.token_exists(org, name):
            raise click.BadParameter(f"a token named {name!r} already exists in {org!r}", param_hint="--name")
        try:
            await services.catalog.upsert_token(org, name, token_hash(secret), permissions)
        except Conflict:
            raise click.BadParameter("that secret is already in use", param_hint="--secret") from None
    finally:
        await services.close()


@token_group.command("create")
@click.option("--org", required=True, help="Organization id.")
@click.option("--name", required=True, help="Token name, unique in the organization.")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice([p.value for p in Permission]),
    default=["read"],
    show_default=True,
    help="Repeat for several.",
)
@click.option(
    "--secret", default=None, help="Use this secret (at least 16 characters) instead of a generated one."
)
@data_dir_option
def token_create(
    org: str, name: str, permissions: tuple[str, ...], secret: str | None, data_dir: Path | None
) -> None:
    """Create an API token and print its secret (only its hash is stored)."""
    try:
        check_identifier(org, field="--org", pattern=OBJECT_ID)
    except AssetfilesError as exc:
        raise click.BadParameter(exc.message, param_hint="--org") from None
    if not 1 <= len(name) <= 128:
        raise click.BadParameter("must be 1-128 characters", param_hint="--name")
    if secret is not None and len(secret) < 16:
        raise click.BadParameter("must be at least 16 characters", param_hint="--secret")
    settings = build_settings(data_dir=data_dir)
    secret = secret or new_secret()
    asyncio.run(_create_token(settings, org, name, secret, [Permission(p) for p in permissions]))
    click.echo(f"token {org}/{name} created with {', '.join(sorted(permissions))}; secret (shown once):")
    click.echo(secret)
