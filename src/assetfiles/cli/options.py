"""Options shared by several commands, and how they become Settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from assetfiles.cli.errors import SetupError
from assetfiles.config import CONFIG_ENV, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from assetfiles.service.composition import Services

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


def require_data_dir(settings: Settings) -> None:
    """Refuse a data directory that holds no catalog, for commands that read or administer one:
    creating an empty one would hide a mistyped path behind a clean answer (``fsck``: 0 problems).
    With the catalog on a database server there is no such file to look for."""
    if settings.database_url:
        return
    catalog = settings.data_dir / "catalog.sqlite3"
    if not catalog.is_file():
        raise SetupError(
            f"no assetfiles data in {settings.data_dir.resolve()} (no catalog.sqlite3): "
            "check --data-dir (or ASSETFILES_DATA_DIR); 'assetfiles apply' or 'serve' creates one"
        )


T = TypeVar("T")


def with_services(
    settings: Settings,
    work: Callable[[Services], Awaitable[T]],
    hints: dict[str, str] | None = None,
) -> T:
    """Open the services of an existing data directory, run one piece of work, close them; a
    refusal becomes a usage error naming the option it is about (``hints`` maps a service field to
    that option)."""
    from assetfiles.errors import AssetfilesError
    from assetfiles.service.composition import Services

    require_data_dir(settings)

    async def run() -> T:
        services = await Services.open(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(run())
    except AssetfilesError as exc:
        hint = (hints or {}).get(exc.field or "")
        if hint is not None:
            raise click.BadParameter(exc.message, param_hint=hint) from None
        raise click.UsageError(exc.message) from None
