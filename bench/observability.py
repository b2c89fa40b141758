"""What the access log and metrics cost per request: the same server with them on and off, same run.

    python -m bench.observability [--files 500] [--seconds 8] [--rounds 3] [--off both|access-log|metrics]

Requests/s with ``wrk`` (16 connections, one thread) cycling through signed URLs of 16 KiB
files: the cheapest request the server answers, so the one where a per-request cost shows the
most. Rounds alternate on/off so that drift of the machine hits both; the figure is the median
of the per-round ratios. "On" is the default (JSON access line per request to a log file,
Prometheus metrics); "off" sets ``ASSETFILES_ACCESS_LOG=false`` and ``ASSETFILES_METRICS=false``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import yaml

from assetfiles.cli.background import BackgroundServer
from bench.common import apply_fixture, save
from bench.download import TOKEN, signed_urls, wrk_rps

#: What "off" turns off: both (the figure the target is about), or one of them to see its share.
OFF = {
    "both": {"ASSETFILES_ACCESS_LOG": "false", "ASSETFILES_METRICS": "false"},
    "access-log": {"ASSETFILES_ACCESS_LOG": "false"},
    "metrics": {"ASSETFILES_METRICS": "false"},
}


def seed(root: Path, count: int) -> Path:
    files = root / "files"
    files.mkdir(parents=True)
    for index in range(count):
        (files / f"small-{index:05d}.bin").write_bytes(os.urandom(16 * 1024))
    fixture = {
        "organizations": [
            {
                "id": "o-bench",
                "tokens": [{"name": "bench", "secret": TOKEN, "permissions": ["read"]}],
                "assets": [
                    {
                        "id": "a-bench",
                        "name": "Bench",
                        "content": [{"path": f"files/small-{i:05d}.bin"} for i in range(count)],
                    }
                ],
            }
        ]
    }
    path = root / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture))
    data_dir = root / "data"
    return apply_fixture(path, data_dir)


def measure(data_dir: Path, env: dict[str, str], seconds: int, workdir: Path) -> float:
    secret = {"ASSETFILES_SECRET_KEY": "bench-observability-key-0123456789"}
    with BackgroundServer(data_dir, env={**secret, **env}, log=workdir / "server.log") as server:
        urls = signed_urls(server.base_url)
        paths = [url[len(server.base_url) :] for url, _ in urls.values()]
        return wrk_rps(server.base_url, paths, seconds, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--off", choices=sorted(OFF), default="both", help="What the 'off' server lacks.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as tmp:
        root = Path(tmp)
        data_dir = seed(root, args.files)
        rounds = []
        for index in range(args.rounds):
            on = measure(data_dir, {}, args.seconds, root)
            off = measure(data_dir, OFF[args.off], args.seconds, root)
            rounds.append({"on_rps": on, "off_rps": off, "ratio": round(on / off, 3)})
            print(f"round {index + 1}: on {on:.0f} req/s, off {off:.0f} req/s, on/off {on / off:.1%}")
        ratio = statistics.median(r["ratio"] for r in rounds)
        print(f"median on/off: {ratio:.1%} (cost {1 - ratio:.1%} per request)")
        save(f"observability-{args.off}", {"rounds": rounds, "median_ratio": ratio, "files": args.files})


if __name__ == "__main__":
    main()
