"""What pyproject.toml promises about versions is what CI tests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).parents[2]


def test_the_clients_lower_bounds_are_the_versions_ci_tests() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for spec in dependencies:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", spec).groups()  # type: ignore[union-attr]
        bounds[name] = Version(version)
    lines = (ROOT / "tests/oldest-client.txt").read_text().splitlines()
    pinned = {
        name: Version(version)
        for name, version in (line.split("==") for line in lines if line and not line.startswith("#"))
    }
    assert bounds == pinned
