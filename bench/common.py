"""Shared pieces of the benchmarks: a server under test, timing statistics, result files."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from assetfiles.cli.background import BackgroundServer

RESULTS = Path(__file__).parent / "results"


def apply_fixture(fixture: Path, data_dir: Path, env: dict[str, str] | None = None) -> Path:
    """``assetfiles apply FIXTURE --data-dir DATA_DIR`` as a user runs it (``env`` added to ours);
    a failure stops the benchmark with apply's own message. Returns ``data_dir``."""
    command = [sys.executable, "-m", "assetfiles", "apply", str(fixture), "--data-dir", str(data_dir)]
    applied = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if applied.returncode != 0:
        raise SystemExit(f"assetfiles apply failed: {applied.stderr or applied.stdout}")
    return data_dir


def start_server(
    data_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[BackgroundServer, str]:
    server = BackgroundServer(data_dir, workers=workers, env=env).start()
    return server, server.base_url


def stop(server: BackgroundServer) -> None:
    server.stop()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def require_tool(name: str, debian_package: str) -> str:
    """The path of a command-line tool, installed from Debian's packages when missing (as root)."""
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{name} is required: apt-get install {debian_package}")
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", debian_package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which(name) or f"/usr/sbin/{name}"
    return found


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def check_fetched(folder: Path, count: int, total_bytes: int, what: str) -> None:
    """Raise unless ``folder`` holds ``count`` files of ``total_bytes`` in all: a reference that
    answered errors (or wrote error pages) must not be measured as if it had fetched the files."""
    files = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".assetfiles") for part in path.relative_to(folder).parts)
    ]
    size = sum(path.stat().st_size for path in files)
    if len(files) != count or size != total_bytes:
        raise RuntimeError(f"{what}: {len(files)} files of {size} bytes, expected {count} of {total_bytes}")
