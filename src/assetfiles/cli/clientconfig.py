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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PATH = Path("~/.config/assetfiles/client.toml")


class EnosConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    app_key: str | None = None
    app_secret: str | None = None
    org: str | None = None


class ClientConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    token: str | None = None
    concurrency: int | None = Field(default=None, ge=1, le=256)
    enos: EnosConfig = Field(default_factory=EnosConfig)


def load_client_config(path: Path | None) -> ClientConfig:
    """The named file (which must exist), else the default one if present, else nothing."""
    explicit = path is not None or "ASSETFILES_CONFIG" in os.environ
    chosen = path or Path(os.environ.get("ASSETFILES_CONFIG", DEFAULT_PATH)).expanduser()
    try:
        document: dict[str, Any] = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise click.BadParameter(f"{chosen} does not exist", param_hint="--config") from None
        return ClientConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"cannot read {chosen}: {exc}", param_hint="--config") from None
    try:
        return ClientConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.BadParameter(f"{chosen}: {problems}", param_hint="--config") from None


def config_option(section: str | None = None) -> Callable[[F], F]:
    """An eager ``--config`` whose values become the command's defaults (flags and env still win)."""

    def apply(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
        config = load_client_config(value)
        values = config.model_dump(exclude={"enos"}) if section is None else config.enos.model_dump()
        ctx.default_map = {**(ctx.default_map or {}), **{k: v for k, v in values.items() if v is not None}}
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
