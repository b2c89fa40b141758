"""Sync benchmark: ``assetfiles sync`` against ``curl --parallel`` and a naive client, same server, same run.

    python -m bench.sync [--small-files 2000] [--large-mib 1024] [--concurrency 16] [--rounds 3]

One assetfiles server (one worker) serves an asset with 2,000 files of 16 KiB and one of 1 GiB.
For each round, into fresh folders:

- ``assetfiles sync`` (a subprocess, timed whole: start-up, listing, URL resolution, downloads,
  verification, manifest) with ``--name`` selecting the small files, then the large one; its
  peak RSS comes from ``wait4``;
- ``curl --parallel --parallel-max 16`` fetching the same signed URLs (resolved beforehand and
  not timed), and for the large file ``curl`` alone and ``curl`` followed by ``sha256sum`` (what
  sync does: fetch and verify);
- a naive client doing the documented workflow one request at a time (httpx, one connection):
  list 50 per page, then for each file ``content(id)`` and a GET of its URL (small files only).

Each figure is the median over the rounds; each ratio is the median of the rounds' own ratios
(sync and curl measured back to back, on the same machine state).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, apply_fixture, check_fetched, require_tool, save, start_server, stop
from bench.download import TOKEN, make_files, signed_urls

ASSET = "a-bench"


def timed_child(command: list[str]) -> tuple[float, int, int]:
    """Seconds, exit code and peak RSS (bytes) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        assert process.stderr is not None
        raise RuntimeError(f"{command[:3]} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, process.returncode, usage.ru_maxrss * 1024


def run_sync(
    base: str, name_glob: str, target: Path, concurrency: int, streams: int | None = None
) -> tuple[float, int]:
    command = [
        sys.executable, "-m", "assetfiles", "sync", ASSET, str(target), "--url", base, "--token", TOKEN,
        "--name", name_glob, "--quiet", "--concurrency", str(concurrency),
        *(["--streams", str(streams)] if streams else []),
    ]  # fmt: skip
    seconds, _, rss = timed_child(command)
    return seconds, rss


def run_curl_parallel(urls: list[str], target: Path, concurrency: int) -> float:
    target.mkdir(parents=True, exist_ok=True)
    config = target.parent / f"{target.name}.curl"
    config.write_text("".join(f'url = "{url}"\noutput = "{target}/f{i:05d}"\n' for i, url in enumerate(urls)))
    command = [
        "curl",
        "--silent",
        "--fail",
        "--parallel",
        "--parallel-max",
        str(concurrency),
        "-K",
        str(config),
    ]
    seconds, _, _ = timed_child(command)
    return seconds


def run_curl_single(url: str, target: Path) -> float:
    seconds, _, _ = timed_child(["curl", "--silent", "--fail", "-o", str(target), url])
    return seconds


def run_sha256sum(target: Path) -> float:
    seconds, _, _ = timed_child(["sha256sum", str(target)])
    return seconds


CONTENT = "query ContentDownload($id: ID!) {content(id: $id) {id url name lastModified}}"
LISTING = """query assetContents($filters: ContentFilters, $pagination: Pagination) {
  assetContents(filters: $filters, pagination: $pagination) {
    assetContents { id name length } totalCount } }"""


def run_naive(base: str, target: Path, limit_files: int) -> tuple[float, int]:
    """The documented workflow, one request at a time; returns seconds and files fetched."""
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fetched = 0
    with httpx.Client(headers={"Authorization": f"Automation {TOKEN}"}, timeout=60) as client:
        offset = 0
        items: list[dict[str, Any]] = []
        while True:
            variables = {
                "filters": {"contentTypes": [], "orderBy": "updated_at", "sort": "desc",
                            "association": {"type": "asset", "id": ASSET}},
                "pagination": {"limit": 50, "offset": offset},
            }  # fmt: skip
            page = client.post(f"{base}/api/graphql", json={"query": LISTING, "variables": variables})
            result = page.json()["data"]["assetContents"]
            items += result["assetContents"]
            offset += 50
            if offset >= result["totalCount"]:
                break
        for item in items:
            if not item["name"].startswith("small-") or fetched >= limit_files:
                continue
            answer = client.post(
                f"{base}/api/graphql", json={"query": CONTENT, "variables": {"id": item["id"]}}
            )
            url = answer.json()["data"]["content"]["url"]
            with httpx.Client(timeout=60) as plain:  # no Authorization on the signed URL
                (target / item["name"]).write_bytes(plain.get(url).content)
            fetched += 1
    return time.perf_counter() - started, fetched


def prepare(root: Path, small: int, large_mib: int) -> Path:
    """The server's data directory, generated once and reused by later runs."""
    data_dir = root / "data"
    if (root / "complete").exists():
        return data_dir
    shutil.rmtree(root, ignore_errors=True)
    made = make_files(root, small, large_mib)
    apply_fixture(made["fixture"], data_dir)
    shutil.rmtree(root / "files")  # the server has its own copy; keep the disk footprint down
    (root / "complete").touch()
    return data_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_tool("curl", "curl")
    RESULTS.mkdir(exist_ok=True)
    data_dir = prepare(
        RESULTS / f"sync-data-{args.small_files}-{args.large_mib}", args.small_files, args.large_mib
    )
    with tempfile.TemporaryDirectory(prefix="assetfiles-bench-sync-", dir=RESULTS) as tmp:
        root = Path(tmp)
        server, base = start_server(data_dir, env={"ASSETFILES_URL_TTL_SECONDS": "7200"})
        rounds: list[dict[str, float]] = []
        try:
            urls = signed_urls(base)
            large_url, _ = urls.pop("large.bin")
            small_urls = [url for url, _ in urls.values()]
            small_bytes = 16 * 1024 * len(small_urls)
            large_bytes = args.large_mib * 1024 * 1024
            for index in range(args.rounds):
                out = root / f"round-{index}"
                sync_small, rss_small = run_sync(base, "small-*", out / "sync", args.concurrency)
                check_fetched(out / "sync", len(small_urls), small_bytes, "sync of the small files")
                curl_small = run_curl_parallel(small_urls, out / "curl", args.concurrency)
                check_fetched(out / "curl", len(small_urls), small_bytes, "curl --parallel")
                shutil.rmtree(out)
                sync_large, rss_large = run_sync(base, "large.bin", out / "sync", args.concurrency)
                check_fetched(out / "sync", 1, large_bytes, "sync of the large file")
                shutil.rmtree(out)
                sync_one, rss_one = run_sync(base, "large.bin", out / "sync", args.concurrency, streams=1)
                shutil.rmtree(out)
                curl_large = run_curl_single(large_url, root / "large.curl")
                if (root / "large.curl").stat().st_size != large_bytes:
                    raise RuntimeError("curl: the large file arrived short")
                sha256sum = run_sha256sum(root / "large.curl")
                (root / "large.curl").unlink()
                rounds.append({
                    "sync_small_files_per_s": len(small_urls) / sync_small,
                    "curl_small_files_per_s": len(small_urls) / curl_small,
                    "sync_small_MBps": small_bytes / sync_small / 1e6,
                    "sync_large_MBps": large_bytes / sync_large / 1e6,
                    "sync_large_one_stream_MBps": large_bytes / sync_one / 1e6,
                    "curl_large_MBps": large_bytes / curl_large / 1e6,
                    "curl_sha256sum_large_MBps": large_bytes / (curl_large + sha256sum) / 1e6,
                    "sync_peak_rss_MB_small": rss_small / 1e6,
                    "sync_peak_rss_MB_large": max(rss_large, rss_one) / 1e6,
                })  # fmt: skip
                print(f"round {index + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in rounds[-1].items()))
            naive_seconds, naive_files = run_naive(base, root / "naive", len(small_urls))
        finally:
            stop(server)
    result: dict[str, Any] = {key: round(statistics.median(r[key] for r in rounds), 1) for key in rounds[0]}
    result["naive_small_files_per_s"] = round(naive_files / naive_seconds, 1)
    result["small_files"] = args.small_files
    result["large_mib"] = args.large_mib
    result["concurrency"] = args.concurrency
    result["rounds"] = rounds
    # ratios within each round (sync and curl back to back, same machine state), then their median
    result["files_ratio_vs_curl"] = round(
        statistics.median(r["sync_small_files_per_s"] / r["curl_small_files_per_s"] for r in rounds), 3
    )
    result["large_ratio_vs_curl"] = round(
        statistics.median(r["sync_large_MBps"] / r["curl_large_MBps"] for r in rounds), 3
    )
    result["large_ratio_vs_curl_sha256sum"] = round(
        statistics.median(r["sync_large_MBps"] / r["curl_sha256sum_large_MBps"] for r in rounds), 3
    )
    result["large_one_stream_ratio_vs_curl_sha256sum"] = round(
        statistics.median(r["sync_large_one_stream_MBps"] / r["curl_sha256sum_large_MBps"] for r in rounds), 3
    )
    result["files_ratio_vs_naive"] = round(
        result["sync_small_files_per_s"] / result["naive_small_files_per_s"], 1
    )
    r = result
    print(
        f"{args.small_files} x 16 KiB: sync {r['sync_small_files_per_s']} files/s, curl --parallel "
        f"{r['curl_small_files_per_s']} files/s -> {r['files_ratio_vs_curl']:.0%} of curl; naive "
        f"{r['naive_small_files_per_s']} files/s -> {r['files_ratio_vs_naive']}x"
    )
    print(
        f"{args.large_mib} MiB: sync {r['sync_large_MBps']} MB/s (one stream "
        f"{r['sync_large_one_stream_MBps']}), curl + sha256sum {r['curl_sha256sum_large_MBps']} MB/s -> "
        f"{r['large_ratio_vs_curl_sha256sum']:.0%} ({r['large_one_stream_ratio_vs_curl_sha256sum']:.0%}); "
        f"curl alone {r['curl_large_MBps']} MB/s -> {r['large_ratio_vs_curl']:.0%} of curl"
    )
    print(f"peak RSS of sync: {max(result['sync_peak_rss_MB_small'], result['sync_peak_rss_MB_large'])} MB")
    print(f"saved to {save('sync', result)}")


if __name__ == "__main__":
    main()
