"""Options shared by several commands, and how they become Settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assetfiles.config import CONFIG_ENV, ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


CONFIG_META = "assetfiles.config"


def _remember_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[CONFIG_META] = value


def data_dir_option(function: F) -> F:
    """``--data-dir`` and ``--config``, for every command that works on the server's data."""
    function = click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_remember_config,
        help=f"Settings file (TOML). Env: {CONFIG_ENV}.",
    )(function)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (catalog and blobs). Env: ASSETFILES_DATA_DIR. Default: ./assetfiles-data.",
    )(function)


def build_settings(**overrides: Any) -> Settings:
    """Command-line values (when given) over the environment over the config file over defaults."""
    context = click.get_current_context(silent=True)
    config = context.meta.get(CONFIG_META) if context is not None else None
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
