"""The mixed load of tests/e2e/test_load.py as a benchmark: listings, URL resolution, downloads
(each checked against its sha256) and uploads at 64 connections, against the same load on an
earlier revision in the same run.

    python -m bench.load [--seconds 60] [--connections 64] [--workers 1] [--baseline REV]

The server under test is this checkout; with ``--baseline`` (a git revision: a commit, a tag,
``HEAD~5``) the same seeded world is served by that revision (a ``git worktree`` put first on
``PYTHONPATH``), loaded the same way first, and the ratio of requests per second is printed. Every
answer is checked (status, sha256 of every download, every upload listed afterwards); a run in
which either server answered an error exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.e2e.test_load import Load, _document, _listed
from tests.helpers import SECRET_KEY, Server, write_fixture

from bench.common import RESULTS, apply_fixture, save, start_server, stop

REPOSITORY = Path(__file__).resolve().parents[1]
ENV = {
    "ASSETFILES_ACCESS_LOG": "false",
    "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": "",
    "ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "",
    "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "0",
    "ASSETFILES_SECRET_KEY": SECRET_KEY,
}


def _seed(root: Path, source: Path | None) -> Path:
    """The load's world in ``root/data``, applied by the revision that will serve it."""
    document, files = _document()
    fixture = write_fixture(root, document, files)
    return apply_fixture(fixture, root / "data", {**ENV, **({"PYTHONPATH": str(source)} if source else {})})


def _measure(root: Path, source: Path | None, args: argparse.Namespace, label: str) -> dict[str, Any]:
    data_dir = _seed(root, source)
    env = {**ENV, **({"PYTHONPATH": str(source)} if source else {})}
    server, base = start_server(data_dir, workers=args.workers, env=env)
    try:
        entry = Server(base, data_dir, server)
        load = Load([base], _listed(entry), seconds=args.seconds, connections=args.connections)
        asyncio.run(load.run())
        print(load.report(label), flush=True)
        lost = set(load.known) - set(_listed(entry))
    finally:
        stop(server)
    figures = load.figures()
    total = sum(row["requests"] for row in figures.values())
    return {
        "per_s": round(total / args.seconds, 1),
        "operations": figures,
        "errors": len(load.errors),
        "first_errors": load.errors[:5],
        "lost_uploads": len(lost),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--baseline", help="a git revision to measure the same load against")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "seconds": args.seconds,
        "connections": args.connections,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory(prefix="assetfiles-bench-load-", dir=RESULTS) as tmp:
        root = Path(tmp)
        if args.baseline:
            tree = root / "baseline-tree"
            git = ["git", "-C", str(REPOSITORY), "worktree"]
            subprocess.run(
                [*git, "add", "--detach", str(tree), args.baseline], check=True, capture_output=True
            )
            try:
                (root / "baseline").mkdir()
                result["baseline"] = _measure(
                    root / "baseline", tree / "src", args, f"baseline {args.baseline}"
                )
            finally:
                subprocess.run([*git, "remove", "--force", str(tree)], check=False, capture_output=True)
            result["baseline_revision"] = args.baseline
        (root / "current").mkdir()
        result["current"] = _measure(root / "current", None, args, "this checkout")
    if "baseline" in result:
        result["ratio"] = round(result["current"]["per_s"] / max(result["baseline"]["per_s"], 0.1), 2)
        print(f"requests/s: {result['current']['per_s']} against {result['baseline']['per_s']} at "
              f"{args.baseline} -> {result['ratio']}x")  # fmt: skip
    print(f"saved to {save('load', result)}")
    failed = [name for name in ("baseline", "current") if name in result
              and (result[name]["errors"] or result[name]["lost_uploads"])]  # fmt: skip
    if failed:
        for name in failed:
            print(f"{name}: {result[name]['errors']} errors, {result[name]['lost_uploads']} uploads lost: "
                  f"{result[name]['first_errors']}", file=sys.stderr)  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
