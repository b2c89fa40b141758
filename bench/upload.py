"""A large upload through tus against a single PUT of the same file, on loopback and over an
emulated wide-area link, and what each resends after a cut connection.

    python -m bench.upload [--mib 1024] [--rate-mbit 128] [--rtt-ms 40] [--rounds 1] [--skip-wan]

Per link (loopback; ``bench.wanproxy`` at ``--rate-mbit`` per connection and ``--rtt-ms``):

- **PUT**: the file's sha256 (the reservation declares it, as for every client of this path),
  ``createContentUpload``, and ``curl -T`` of the file to its upload URL, timed together: one
  request for the bytes, nothing resumable;
- **tus**: ``assetfiles upload`` as users run it (hashing the file, 8 MiB PATCHes each with a
  sha256 ``Upload-Checksum``), timed whole;
- **after a cut**: the same two through a proxy that cuts the first connection a third of the way
  in. curl's PUT has to start again from byte 0; ``assetfiles upload`` asks the server's offset
  and sends the rest. The proxy counts the client's bytes: what went twice is the count minus
  the file's size.

Every answer is checked (201 from the PUT, exit 0 and a content from the CLI); a run where any
path failed exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.cutproxy import CutProxy

from bench.common import RESULTS, apply_fixture, require_tool, save, start_server, stop
from bench.wan import start_proxy

TOKEN = "tok-bench-upload-0123456789"
MIB = 1024 * 1024


def _file(mib: int) -> tuple[Path, str]:
    path = RESULTS / f"upload-{mib}.bin"
    if not path.exists() or path.stat().st_size != mib * MIB:
        RESULTS.mkdir(exist_ok=True)
        with path.open("wb") as out:
            for _ in range(mib):
                out.write(os.urandom(MIB))
    return path, _sha256(path)


def _prepare(root: Path) -> Path:
    fixture = {"organizations": [{"id": "o-bench", "assets": [{"id": "a-bench", "name": "Bench"}],
               "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}]}]}  # fmt: skip
    (root / "fixture.yaml").write_text(yaml.safe_dump(fixture))
    return apply_fixture(root / "fixture.yaml", root / "data")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def _put(base: str, path: Path, sha256: str) -> float:
    """The file's sha256 (which the reservation declares, as every client of this path must),
    createContentUpload, then one curl PUT of the whole file: timed together."""
    started = time.monotonic()
    if _sha256(path) != sha256:
        raise RuntimeError(f"{path} changed during the benchmark")
    mutation = "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { uploadUrl } }"
    variables = {"i": {"name": path.name, "length": path.stat().st_size, "sha256": sha256,
                       "associations": [{"type": "asset", "id": "a-bench"}]}}  # fmt: skip
    answer = httpx.post(f"{base}/api/graphql", json={"query": mutation, "variables": variables},
                        headers={"Authorization": f"Automation {TOKEN}"}, timeout=60)  # fmt: skip
    url = answer.json()["data"]["createContentUpload"]["uploadUrl"]
    curl = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(path), url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if curl.stdout.strip() != "201":
        raise RuntimeError(f"PUT answered {curl.stdout.strip() or curl.stderr.strip()}")
    return seconds


def _put_after_cut(base: str, path: Path, sha256: str, proxy: CutProxy) -> int:
    """A PUT cut a third of the way in, then the PUT again (curl cannot resume an upload)."""
    before = proxy.sent
    with contextlib.suppress(RuntimeError):  # the cut: the answer never comes
        _put(proxy.base_url, path, sha256)
    _put(proxy.base_url, path, sha256)
    return proxy.sent - before


def _tus(base: str, path: Path, state: Path) -> float:
    env = {**os.environ, "ASSETFILES_STATE_DIR": str(state), "ASSETFILES_TOKEN": TOKEN}
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "assetfiles",
        "upload",
        "--url",
        base,
        "--asset",
        "a-bench",
        "--json",
        str(path),
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines or lines[0].get("event") != "uploaded":
        raise RuntimeError(f"assetfiles upload failed: {run.stdout[-500:]} {run.stderr[-500:]}")
    return seconds


def _link(
    base: str, label: str, path: Path, sha256: str, state: Path, cut_proxy: CutProxy
) -> dict[str, float]:
    size = path.stat().st_size
    put = _put(base, path, sha256)
    tus = _tus(base, path, state / label)
    cut_proxy.cuts = cut_proxy.cut + 1  # one cut for the PUT
    put_resent = _put_after_cut(base, path, sha256, cut_proxy) - size
    cut_proxy.cuts = cut_proxy.cut + 1  # and one for tus
    before = cut_proxy.sent
    _tus(cut_proxy.base_url, path, state / f"{label}-cut")
    tus_resent = cut_proxy.sent - before - size
    return {
        "put_MBps": size / put / 1e6,
        "tus_MBps": size / tus / 1e6,
        "tus_vs_put": put / tus,
        "put_resent_MiB": put_resent / MIB,
        "tus_resent_MiB": tus_resent / MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rate-mbit", type=float, default=128.0)
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--skip-wan", action="store_true")
    args = parser.parse_args()
    require_tool("curl", "curl")
    path, sha256 = _file(args.mib)
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="assetfiles-bench-upload-", dir=RESULTS) as tmp:
        root = Path(tmp)
        data_dir = _prepare(root)
        env = {"ASSETFILES_ACCESS_LOG": "false", "ASSETFILES_URL_TTL_SECONDS": "7200",
               "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": ""}  # fmt: skip
        server, base = start_server(data_dir, env=env)
        links = {"loopback": base}
        proxy = None
        if not args.skip_wan:
            proxy, links["wan"] = start_proxy(base, args.rate_mbit, args.rtt_ms)
        try:
            for index in range(args.rounds):
                figures: dict[str, float] = {}
                for label, url in links.items():
                    port = int(url.rsplit(":", 1)[1])
                    with CutProxy(port, cut_after=args.mib * MIB // 3, cuts=0) as cutter:
                        for key, value in _link(url, label, path, sha256, root / "state", cutter).items():
                            figures[f"{label}_{key}"] = value
                rounds.append(figures)
                print(
                    f"round {index + 1}: " + ", ".join(f"{k} {v:,.2f}" for k, v in figures.items()),
                    flush=True,
                )
        finally:
            if proxy is not None:
                proxy.kill()
            stop(server)
    result: dict[str, Any] = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    result.update(mib=args.mib, rate_mbit=args.rate_mbit, rtt_ms=args.rtt_ms, rounds=rounds)
    for label in links:
        figure = {
            key.removeprefix(f"{label}_"): value for key, value in result.items() if key.startswith(label)
        }
        print(
            f"{label}: {args.mib} MiB, PUT {figure['put_MBps']} MB/s, tus {figure['tus_MBps']} MB/s -> "
            f"{figure['tus_vs_put']:.0%} of a single PUT; after a cut a third of the way in, PUT resent "
            f"{figure['put_resent_MiB']:.0f} MiB, tus {figure['tus_resent_MiB']:.1f} MiB"
        )
    print(f"saved to {save('upload', result)}")


if __name__ == "__main__":
    main()
