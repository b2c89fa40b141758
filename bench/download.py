"""Download benchmark: the signed transfer endpoint against nginx serving the same blob files,
in the same run, with the same clients.

    python -m bench.download [--small-files 2000] [--large-mib 1024] [--seconds 10] [--workers 1]

- one large file (default 1 GiB): MB/s with ``curl -o /dev/null``, median of 3 runs;
- many 16 KiB files: requests/s with ``wrk`` (16 connections, one thread) cycling through all of
  them, signed URLs for assetfiles and plain paths for nginx;
- each for three paths: assetfiles serving the bytes itself, assetfiles behind nginx with
  X-Accel-Redirect (Python checks the signature, nginx serves the file; docs/nginx.md), and
  nginx serving the blob files directly.

Both servers get the same number of worker processes (--workers). nginx and wrk come from
Debian's packages (installed when missing and running as root).
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import statistics
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from assetfiles.cli.background import free_port
from bench.common import apply_fixture, require_tool, save, start_server, stop

TOKEN = "tok-bench-download-0123456789"


def make_files(root: Path, small: int, large_mib: int) -> dict[str, Any]:
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    with (files / "large.bin").open("wb") as out:
        for _ in range(large_mib):
            out.write(os.urandom(1024 * 1024))
    for index in range(small):
        (files / f"small-{index:05d}.bin").write_bytes(os.urandom(16 * 1024))
    content = [{"path": "files/large.bin"}] + [{"path": f"files/small-{i:05d}.bin"} for i in range(small)]
    fixture = {
        "organizations": [
            {
                "id": "o-bench",
                "tokens": [{"name": "bench", "secret": TOKEN, "permissions": ["read"]}],
                "assets": [{"id": "a-bench", "name": "Bench", "content": content}],
            }
        ]
    }
    path = root / "fixture.yaml"
    path.write_text(yaml.safe_dump(fixture))
    return {"fixture": path}


def signed_urls(base: str) -> dict[str, tuple[str, str]]:
    """name -> (signed URL, sha256), through the documented listing and content queries."""
    query = """query($p: Pagination) { assetContents(filters: {association: {type: "asset", id: "a-bench"}},
      pagination: $p) { assetContents { name sha256 url: url } totalCount } }"""
    result: dict[str, tuple[str, str]] = {}
    offset = 0
    with httpx.Client(headers={"Authorization": f"Automation {TOKEN}"}, timeout=60) as client:
        while True:
            body = client.post(
                f"{base}/api/graphql",
                json={"query": query, "variables": {"p": {"limit": 1000, "offset": offset}}},
            ).json()
            page = body["data"]["assetContents"]
            for item in page["assetContents"]:
                result[item["name"]] = (item["url"], item["sha256"])
            offset += 1000
            if offset >= page["totalCount"]:
                return result


def nginx_start(
    blob_dir: Path, workdir: Path, workers: int, upstream: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """nginx serving the blob directory at /blobs/; with ``upstream``, also proxying everything
    else to assetfiles and serving its X-Accel-Redirect answers from an internal /_blobs/."""
    nginx = require_tool("nginx", "nginx")
    port = free_port()
    name = "offload" if upstream else "direct"
    conf = workdir / f"nginx-{name}.conf"
    proxy = (
        f"""
                location / {{ proxy_pass http://{upstream}; proxy_http_version 1.1;
                              proxy_set_header Connection ""; proxy_set_header Host $http_host;
                              proxy_buffering off; }}
                location /_blobs/ {{ internal; alias {blob_dir}/;
                                    add_header Repr-Digest $upstream_http_repr_digest always; }}"""
        if upstream
        else ""
    )
    # blob files are owner-only (docs/nginx.md): the workers run as the server's user, as deployed
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
    conf.write_text(
        textwrap.dedent(
            f"""
            {user}
            worker_processes {workers};
            daemon off;
            pid {workdir}/nginx-{name}.pid;
            error_log {workdir}/nginx-{name}-error.log;
            events {{ worker_connections 1024; }}
            http {{
              access_log off;
              sendfile on;
              tcp_nopush on;
              keepalive_requests 100000;
              client_body_temp_path {workdir}/body;
              proxy_temp_path {workdir}/proxy;
              fastcgi_temp_path {workdir}/fastcgi;
              uwsgi_temp_path {workdir}/uwsgi;
              scgi_temp_path {workdir}/scgi;
              server {{
                listen 127.0.0.1:{port};
                location /blobs/ {{ alias {blob_dir}/; default_type application/octet-stream; }}{proxy}
              }}
            }}
            """
        )
    )
    process = subprocess.Popen([nginx, "-c", str(conf)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base, timeout=0.5)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


def blob_path(sha256: str) -> str:
    return f"/blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def curl_mbps(url: str, expected_bytes: int, runs: int = 3) -> float:
    """MB/s of a whole GET, following a redirect; raises unless it answered 200 with every byte."""
    speeds = []
    for _ in range(runs):
        out = subprocess.run(
            ["curl", "-sL", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        status, size, speed = out.split()
        if status != "200" or int(size) != expected_bytes:
            raise RuntimeError(
                f"GET {url.split('?')[0]} answered {status} with {size} of {expected_bytes} bytes"
            )
        speeds.append(float(speed) / 1e6)
    return round(statistics.median(speeds), 1)


def wrk_rps(base: str, paths: list[str], seconds: int, workdir: Path) -> float:
    wrk = require_tool("wrk", "wrk")
    listing = workdir / f"paths-{abs(hash(base))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / f"cycle-{abs(hash(base))}.lua"
    script.write_text(
        textwrap.dedent(
            f"""
            local paths = {{}}
            for line in io.lines("{listing}") do paths[#paths + 1] = line end
            local i = 0
            request = function()
              i = i % #paths + 1
              return wrk.format("GET", paths[i])
            end
            """
        )
    )
    out = subprocess.run(
        [wrk, "-t1", "-c16", f"-d{seconds}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or errors is not None:
        raise RuntimeError(f"wrk failed:\n{out}")
    return round(float(match.group(1)), 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    require_tool("nginx", "nginx")
    require_tool("wrk", "wrk")

    with tempfile.TemporaryDirectory(prefix="assetfiles-bench-") as tmp:
        root = Path(tmp)
        made = make_files(root, args.small_files, args.large_mib)
        data_dir = root / "data"
        apply_fixture(made["fixture"], data_dir)
        env = {"ASSETFILES_URL_TTL_SECONDS": "7200"}
        server, base = start_server(data_dir, workers=args.workers, env=env)
        # the same data served by a second assetfiles that hands the bytes to nginx
        offload_env = {**env, "ASSETFILES_ACCEL_REDIRECT_PREFIX": "/_blobs/"}
        offload_server, offload_base = start_server(data_dir, workers=args.workers, env=offload_env)
        nginx, nginx_base = nginx_start(data_dir / "blobs", root, args.workers)
        front, front_base = nginx_start(
            data_dir / "blobs", root, args.workers, upstream=offload_base.removeprefix("http://")
        )
        try:
            urls = signed_urls(base)
            large_url, large_sha = urls.pop("large.bin")
            large_bytes = args.large_mib * 1024 * 1024
            ours_small = [url.removeprefix(base) for url, _ in urls.values()]
            nginx_small = [blob_path(sha) for _, sha in urls.values()]
            front_urls = signed_urls(front_base)  # signed for the Host clients use: nginx's
            front_large, _ = front_urls.pop("large.bin")
            front_small = [url.removeprefix(front_base) for url, _ in front_urls.values()]
            result = {
                "large_file_mib": args.large_mib,
                "small_files": len(ours_small),
                "workers": args.workers,
                "large_MBps": {
                    "assetfiles": curl_mbps(large_url, large_bytes),
                    "offloaded": curl_mbps(front_large, large_bytes),
                    "nginx": curl_mbps(nginx_base + blob_path(large_sha), large_bytes),
                },
                "small_rps": {
                    "assetfiles": wrk_rps(base, ours_small, args.seconds, root),
                    "offloaded": wrk_rps(front_base, front_small, args.seconds, root),
                    "nginx": wrk_rps(nginx_base, nginx_small, args.seconds, root),
                },
            }
        finally:
            stop(server)
            stop(offload_server)
            for process in (nginx, front):
                process.terminate()
                process.wait()
    large, small = result["large_MBps"], result["small_rps"]
    for path in ("assetfiles", "offloaded"):
        result[f"large_ratio_{path}"] = round(large[path] / large["nginx"], 2)
        result[f"small_ratio_{path}"] = round(small[path] / small["nginx"], 3)
        print(f"{args.large_mib} MiB file, {path}: {large[path]} MB/s, nginx {large['nginx']} MB/s "
              f"-> {result[f'large_ratio_{path}']:.0%} of nginx")  # fmt: skip
        print(f"16 KiB files, {path}: {small[path]} req/s, nginx {small['nginx']} req/s "
              f"-> {result[f'small_ratio_{path}']:.1%} of nginx")  # fmt: skip
    print(f"saved to {save('download', result)}")


if __name__ == "__main__":
    main()
