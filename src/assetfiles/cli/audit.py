"""``assetfiles audit``: read the audit log (what changed, who did it, through which face)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assetfiles.cli.options import build_settings, data_dir_option, with_services
from assetfiles.errors import BadInput
from assetfiles.model import iso_to_ms, ms_to_iso, now_ms

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> int:
    """``2026-11-23T10:00:00Z`` or a duration back from now: ``90s``, ``15m``, ``24h``, ``7d``."""
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        return now_ms() - int(value[:-1]) * _UNITS[value[-1]] * 1000
    try:
        return iso_to_ms(value, field="--since")
    except BadInput:
        raise click.BadParameter(
            "an ISO 8601 date-time, or a duration such as 15m, 24h or 7d", param_hint="--since"
        ) from None


@click.command("audit")
@click.option("--org", default=None, help="Only this organization's events.")
@click.option("--since", default=None, help="From this time (ISO 8601) or this long ago (15m, 24h, 7d).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="At most this many events (the newest).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@data_dir_option
def audit_command(
    org: str | None, since: str | None, limit: int, as_json: bool, data_dir: Path | None
) -> None:
    """Content created, retagged and deleted, tokens created and revoked, failed sign-ins."""
    start = parse_since(since) if since else None
    settings = build_settings(data_dir=data_dir)

    events = with_services(settings, lambda services: services.audit.read(org, start, limit))
    for event in events:
        record = {
            "at": ms_to_iso(event.at), "org": event.org_id, "action": event.action, "face": event.face,
            "actorKind": event.actor_kind, "actor": event.actor, "target": event.target,
            "count": event.count, "detail": event.detail,
        }  # fmt: skip
        if as_json:
            click.echo(json.dumps(record))
        else:
            who = f"{event.actor_kind}:{event.actor}" if event.actor else "-"
            times = f" x{event.count}" if event.count != 1 else ""
            click.echo(
                f"{record['at']}  {event.org_id or '-'}  {event.action}{times}  via {event.face}  "
                f"by {who}  {event.target or ''}"
            )
