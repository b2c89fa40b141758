"""Options shared by several commands, and how they become Settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from assetfiles.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (catalog and blobs). Env: ASSETFILES_DATA_DIR. Default: ./assetfiles-data.",
    )(function)


def build_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line values (when given) taking precedence."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(f"invalid settings: {problems}") from None
