"""``assetfiles device``: the sessions devices opened by logging in (EnOS device HTTP API)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assetfiles.cli.options import build_settings, data_dir_option, with_services
from assetfiles.errors import BadInput
from assetfiles.model import DeviceRef, ms_to_iso

_HINTS = {"device": "--device", "product_id": "--device", "device_id": "--device"}


@click.group("device")
def device_group() -> None:
    """List and revoke the sessions devices hold; enable Murano activation."""


@device_group.command("sessions")
@click.option("--org", default=None, help="Only this organization's devices.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@data_dir_option
def sessions_command(org: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Open sessions, oldest first: device, protocol, opened, expires (never a session id)."""
    sessions = with_services(
        build_settings(data_dir=data_dir), lambda services: services.device_sessions.list(org), _HINTS
    )
    for session in sessions:
        record = {
            "org": session.org_id,
            "device": str(session.device),
            "protocol": session.protocol,
            "openedAt": ms_to_iso(session.created_at),
            "expiresAt": ms_to_iso(session.expires_at),
        }
        if as_json:
            click.echo(json.dumps(record))
        else:
            who = f"{record['org']}/{record['device']}"
            click.echo(
                f"{who}\t{session.protocol}\topened {record['openedAt']}\texpires {record['expiresAt']}"
            )


@device_group.command("revoke-sessions")
@click.option("--org", required=True, help="Organization id.")
@click.option("--device", "device", required=True, help="<product_id>.<device_id>")
@data_dir_option
def revoke_sessions_command(org: str, device: str, data_dir: Path | None) -> None:
    """End every session of a device at once (it must log in again)."""
    ref = _device(device)
    revoked = with_services(
        build_settings(data_dir=data_dir), lambda services: services.device_sessions.revoke(org, ref), _HINTS
    )
    click.echo(f"{revoked} session(s) of device {org}/{ref} revoked")


@device_group.command("enable-activation")
@click.option("--org", required=True, help="Organization id.")
@click.option("--device", "device", required=True, help="<product_id>.<device_id>")
@data_dir_option
def enable_activation_command(org: str, device: str, data_dir: Path | None) -> None:
    """Let a Murano device activate (again): its next POST /provision/activate gets a new token."""
    ref = _device(device)
    with_services(
        build_settings(data_dir=data_dir),
        lambda services: services.device_sessions.enable_activation(org, ref),
        _HINTS,
    )
    click.echo(f"device {org}/{ref} may activate")


def _device(value: str) -> DeviceRef:
    try:
        return DeviceRef.parse(value, field="device")
    except BadInput as exc:
        raise click.BadParameter(exc.message, param_hint="--device") from None
