"""Every metric docs/alerts.yml uses is one the server defines (a renamed metric would leave an
alert that can never fire)."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

from assetfiles.server.metrics import Metrics

RULES = Path(__file__).resolve().parents[2] / "docs" / "alerts.yml"


def test_every_metric_the_rules_use_is_defined() -> None:
    Metrics.get()
    defined: set[str] = set()
    for family in REGISTRY.collect():
        defined.add(family.name)
        if family.type == "counter":
            defined.add(f"{family.name}_total")
        if family.type == "histogram":
            defined.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    used = set(re.findall(r"\bassetfiles_[a-z_]+", RULES.read_text()))
    assert used and used <= defined, sorted(used - defined)
