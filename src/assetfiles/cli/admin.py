"""Administration on the server machine: ``apply`` fixtures and ``token create|list|revoke``.

These commands open the catalog directly (they are how the first credentials come to exist);
everything else goes through the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import yaml

from assetfiles.cli.options import build_settings, data_dir_option, with_services
from assetfiles.config import Settings
from assetfiles.errors import AssetfilesError
from assetfiles.model import Permission, ms_to_iso, now_ms
from assetfiles.service.composition import Services
from assetfiles.service.seeding import ApplyReport, Fixture, apply_fixture

T = TypeVar("T")


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


#: Which command option a provisioning rule's field is about.
_HINTS = {"name": "--name", "token.name": "--name", "token.secret": "--secret", "token.org": "--org",
          "token.permissions": "--permission", "expires_in": "--expires-in"}  # fmt: skip


def _run(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    return with_services(settings, work, _HINTS)


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
@click.option("--expires-in", type=int, default=None, help="Seconds until the token expires. Default: never.")
@data_dir_option
def token_create(
    org: str,
    name: str,
    permissions: tuple[str, ...],
    secret: str | None,
    expires_in: int | None,
    data_dir: Path | None,
) -> None:
    """Create an API token and print its secret (only its hash is stored)."""
    chosen = [Permission(p) for p in permissions]
    created = _run(
        build_settings(data_dir=data_dir),
        lambda services: services.provisioning.create_token(org, name, secret, chosen, expires_in=expires_in),
    )
    lifetime = f", expires in {expires_in} s" if expires_in else ""
    click.echo(
        f"token {org}/{name} created with {', '.join(sorted(permissions))}{lifetime}; secret (shown once):"
    )
    click.echo(created)


@token_group.command("list")
@click.option("--org", default=None, help="Only this organization's tokens.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@data_dir_option
def token_list(org: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Every token with its permissions, expiry, revocation and last use (never a secret)."""
    tokens = _run(build_settings(data_dir=data_dir), lambda services: services.provisioning.list_tokens(org))
    now = now_ms()
    for token in tokens:
        state = "revoked" if token.revoked_at else "expired" if not token.usable(now) else "active"
        names = sorted(p.value for p in token.permissions)
        record = {
            "org": token.org_id,
            "name": token.name,
            "permissions": names,
            "state": state,
            "createdAt": ms_to_iso(token.created_at),
            "expiresAt": ms_to_iso(token.expires_at) if token.expires_at else None,
            "revokedAt": ms_to_iso(token.revoked_at) if token.revoked_at else None,
            "lastUsedAt": ms_to_iso(token.last_used_at) if token.last_used_at else None,
        }
        if as_json:
            click.echo(json.dumps(record))
        else:
            click.echo(
                f"{token.org_id}/{token.name}\t{','.join(names)}\t{state}\t"
                f"expires {record['expiresAt'] or 'never'}\tlast used {record['lastUsedAt'] or 'never'}"
            )


@token_group.command("revoke")
@click.option("--org", required=True, help="Organization id.")
@click.option("--name", required=True, help="Token name.")
@data_dir_option
def token_revoke(org: str, name: str, data_dir: Path | None) -> None:
    """Revoke a token at once, on every face (it then answers like an unknown token)."""
    _run(build_settings(data_dir=data_dir), lambda services: services.provisioning.revoke_token(org, name))
    click.echo(f"token {org}/{name} revoked")
