"""The client's config file: defaults for ``sync`` and ``enos`` options, below flags and environment.

TOML, from ``--config FILE``, ``ASSETFILES_CONFIG`` or ``~/.config/assetfiles/client.toml``::

    url = "https://assets.example.com"
    token = "..."            # better in ASSETFILES_TOKEN; the file should be private (0600)
    concurrency = 16

    [enos]
    url = "https://apim.example.com"
    app_key = "..."
    app_secret = "..."
    org = "o-acme"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PATH = Path("~/.config/assetfiles/client.toml")


#: Allowed keys and their TOML types; values are then checked again by each option's click type.
TOP_LEVEL: dict[str, type] = {"url": str, "token": str, "concurrency": int}
ENOS: dict[str, type] = {"url": str, "app_key": str, "app_secret": str, "org": str}


def _checked(table: dict[str, Any], allowed: dict[str, type], prefix: str, where: Path) -> dict[str, Any]:
    for key, value in table.items():
        if key not in allowed:
            raise click.BadParameter(f"{where}: {prefix}{key}: unknown key", param_hint="--config")
        if not isinstance(value, allowed[key]) or isinstance(value, bool):
            expected = allowed[key].__name__
            raise click.BadParameter(f"{where}: {prefix}{key}: expected {expected}", param_hint="--config")
    return table


def load_client_config(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(top-level, [enos]) values from the named file (which must exist), else the default one if present.

    Plain checks rather than a settings model: this runs on every start of a cron job.
    """
    explicit = path is not None or "ASSETFILES_CONFIG" in os.environ
    chosen = path or Path(os.environ.get("ASSETFILES_CONFIG", DEFAULT_PATH)).expanduser()
    try:
        document: dict[str, Any] = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise click.BadParameter(f"{chosen} does not exist", param_hint="--config") from None
        return {}, {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"cannot read {chosen}: {exc}", param_hint="--config") from None
    enos = document.pop("enos", {})
    if not isinstance(enos, dict):
        raise click.BadParameter(f"{chosen}: enos: expected a table", param_hint="--config")
    return _checked(document, TOP_LEVEL, "", chosen), _checked(enos, ENOS, "enos.", chosen)


def config_option(section: str | None = None) -> Callable[[F], F]:
    """An eager ``--config`` whose values become the command's defaults (flags and env still win)."""

    def apply(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
        top, enos = load_client_config(value)
        ctx.default_map = {**(ctx.default_map or {}), **(top if section is None else enos)}
        return value

    return click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        is_eager=True,
        expose_value=False,
        callback=apply,
        help=f"TOML config file. Env: ASSETFILES_CONFIG. Default: {DEFAULT_PATH} if present.",
    )
