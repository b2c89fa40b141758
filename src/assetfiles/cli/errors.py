"""How commands end on a setup mistake (imports only click: the client-only commands use it too)."""

from __future__ import annotations

import click


class SetupError(click.ClickException):
    """The command cannot start or go on as configured (a busy port, a data directory that is not
    there, a URL that leads to no API, a refused token): one clear line and exit 2, which scripts
    and cron alerts tell from work that failed (1)."""

    exit_code = 2
