"""Sync over an emulated wide-area link against aria2c with the same signed URLs, same run.

    python -m bench.wan [--small-files 2000] [--large-mib 1024] [--rate-mbit 128] [--rtt-ms 40]
                        [--rounds 1]

The server of ``bench.sync`` (2,000 x 16 KiB and one 1 GiB file) is reached through
``bench.wanproxy``: every TCP connection capped at ``--rate-mbit`` per direction with
``--rtt-ms`` of round-trip delay (its own process). Through it:

- the small files: ``assetfiles sync`` (timed whole: start-up, listing, URL resolution,
  downloads, sha256 verification, manifest; its default ``--concurrency 16``) against
  ``aria2c -j16`` given the signed URLs (resolved beforehand through the same link, not timed);
- the large file: ``assetfiles sync`` (default: 4 ranged streams), ``sync --streams 1``, and
  ``aria2c -x4 -s4`` (4 connections to the one server, 4 pieces).

aria2c does not verify what it fetched; sync does (sha256 of every byte). Peak RSS of each sync
comes from ``wait4``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assetfiles.cli.background import free_port
from bench.common import RESULTS, check_fetched, require_tool, save, start_server, stop
from bench.download import signed_urls
from bench.sync import prepare, run_sync, timed_child

ARIA2 = ["--quiet=true", "--file-allocation=falloc", "--allow-overwrite=true", "--auto-file-renaming=false",
         "--console-log-level=error", "--summary-interval=0", "--check-certificate=false"]  # fmt: skip


def start_proxy(upstream: str, rate_mbit: float, rtt_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.wanproxy", "--port", str(port), "--upstream", upstream.removeprefix("http://"),
         "--rate-mbit", str(rate_mbit), "--rtt-ms", str(rtt_ms)],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the WAN proxy did not start")


def aria2_many(urls: list[str], target: Path) -> float:
    target.mkdir(parents=True, exist_ok=True)
    listing = target.parent / f"{target.name}.aria2"
    listing.write_text("".join(f"{url}\n  out=f{i:05d}\n" for i, url in enumerate(urls)))
    seconds, _, _ = timed_child(["aria2c", *ARIA2, "-j16", "-d", str(target), "-i", str(listing)])
    return seconds


def aria2_one(url: str, target: Path) -> float:
    target.mkdir(parents=True, exist_ok=True)
    command = ["aria2c", *ARIA2, "-x4", "-s4", "-d", str(target), "-o", "large.bin", url]
    seconds, _, _ = timed_child(command)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--rate-mbit", type=float, default=128.0)
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    args = parser.parse_args()
    require_tool("aria2c", "aria2")
    data_dir = prepare(
        RESULTS / f"sync-data-{args.small_files}-{args.large_mib}", args.small_files, args.large_mib
    )
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="assetfiles-bench-wan-", dir=RESULTS) as tmp:
        root = Path(tmp)
        server, base = start_server(data_dir, env={"ASSETFILES_URL_TTL_SECONDS": "7200"})
        proxy, wan = start_proxy(base, args.rate_mbit, args.rtt_ms)
        try:
            urls = signed_urls(wan)  # URLs through the link: the server signs them for the proxy's host
            large_url, _ = urls.pop("large.bin")
            small_urls = [url for url, _ in urls.values()]
            large_bytes = args.large_mib * 1024 * 1024
            for index in range(args.rounds):
                out = root / f"round-{index}"
                figures: dict[str, float] = {}
                seconds, rss = run_sync(wan, "small-*", out / "sync", 16)
                check_fetched(out / "sync", len(small_urls), 16 * 1024 * len(small_urls), "sync")
                figures["sync_small_files_per_s"] = len(small_urls) / seconds
                figures["sync_peak_rss_MB_small"] = rss / 1e6
                figures["aria2_j16_small_files_per_s"] = len(small_urls) / aria2_many(
                    small_urls, out / "aria2"
                )
                check_fetched(out / "aria2", len(small_urls), 16 * 1024 * len(small_urls), "aria2c -j16")
                shutil.rmtree(out)
                if not args.skip_large:
                    seconds, rss = run_sync(wan, "large.bin", out / "sync", 16)
                    figures["sync_large_MBps"] = large_bytes / seconds / 1e6
                    figures["sync_peak_rss_MB_large"] = rss / 1e6
                    shutil.rmtree(out)
                    seconds, rss = run_sync(wan, "large.bin", out / "sync", 16, streams=1)
                    figures["sync_one_stream_large_MBps"] = large_bytes / seconds / 1e6
                    shutil.rmtree(out)
                    figures["aria2_x4_large_MBps"] = large_bytes / aria2_one(large_url, out / "aria2") / 1e6
                    check_fetched(out / "aria2", 1, large_bytes, "aria2c -x4")
                    shutil.rmtree(out)
                rounds.append(figures)
                print(
                    f"round {index + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()),
                    flush=True,
                )
        finally:
            proxy.kill()
            stop(server)
    result: dict[str, Any] = {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}
    result.update(small_files=args.small_files, large_mib=args.large_mib, rate_mbit=args.rate_mbit,
                  rtt_ms=args.rtt_ms, rounds=rounds)  # fmt: skip
    if not args.skip_small:
        result["small_ratio_vs_aria2_j16"] = round(
            statistics.median(r["sync_small_files_per_s"] / r["aria2_j16_small_files_per_s"] for r in rounds),
            3,
        )
        print(
            f"{args.small_files} x 16 KiB over {args.rate_mbit:g} Mbit/s per connection, {args.rtt_ms:g} ms "
            f"RTT: sync {result['sync_small_files_per_s']} files/s, aria2c -j16 "
            f"{result['aria2_j16_small_files_per_s']} files/s -> {result['small_ratio_vs_aria2_j16']:.0%}"
        )
    if not args.skip_large:
        result["large_ratio_vs_aria2_x4"] = round(
            statistics.median(r["sync_large_MBps"] / r["aria2_x4_large_MBps"] for r in rounds), 3
        )
        result["large_ratio_vs_one_stream"] = round(
            statistics.median(r["sync_large_MBps"] / r["sync_one_stream_large_MBps"] for r in rounds), 2
        )
        print(
            f"{args.large_mib} MiB: sync {result['sync_large_MBps']} MB/s, one stream "
            f"{result['sync_one_stream_large_MBps']} MB/s ({result['large_ratio_vs_one_stream']}x), "
            f"aria2c -x4 -s4 {result['aria2_x4_large_MBps']} MB/s -> {result['large_ratio_vs_aria2_x4']:.0%}"
        )
    print(f"peak RSS of sync: {max(v for k, v in result.items() if k.startswith('sync_peak_rss'))} MB")
    print(f"saved to {save('wan', result)}")


if __name__ == "__main__":
    main()
