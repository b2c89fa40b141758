"""The OpenAPI document of the EnOS REST endpoints, served at ``/openapi.json``."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml

DOCUMENT: dict[str, Any] = yaml.safe_load(
    files("assetfiles.server").joinpath("enos-openapi.yaml").read_text()
)
