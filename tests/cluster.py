"""The scaled-out deployment of docs/scaling.md, for tests: two server processes, each with its
own port and local data directory, behind nginx balancing between them, sharing one PostgreSQL
catalog, one SeaweedFS bucket and one Redis for the rate limits.

It runs in the PostgreSQL + S3 pass of .ci/run (``ASSETFILES_TEST_BACKEND=postgres
ASSETFILES_TEST_BLOBS=s3``); elsewhere, or without nginx or redis-server, the tests that need it
skip saying which.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from assetfiles.cli.background import free_port
from tests.backends import BACKEND, BLOBS, backend_env
from tests.helpers import SECRET_KEY, Server, seed, start_server
from tests.nginx import MISSING as NGINX_MISSING
from tests.nginx import Nginx, nginx_binary, start_nginx


def missing_parts() -> str | None:
    """Why the topology cannot run here, or None."""
    if BACKEND != "postgres" or BLOBS != "s3":
        return (
            "the two-node topology runs in the PostgreSQL + S3 pass "
            "(ASSETFILES_TEST_BACKEND=postgres ASSETFILES_TEST_BLOBS=s3)"
        )
    if nginx_binary() is None:
        return NGINX_MISSING
    if shutil.which("redis-server") is None:
        return (
            "redis-server is not installed (Debian package 'redis-server'; .ci/run installs it when it can)"
        )
    return None


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def start_redis(directory: Path) -> RedisServer:
    """A redis-server of the test's own on loopback, keeping nothing on disk."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(directory)]  # fmt: skip
    process = subprocess.Popen(command, stdout=(directory / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    for _ in range(200):
        try:
            if client.ping():
                return RedisServer(url, process)
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on port {port}; see {directory}/redis.log")


@dataclass
class Cluster:
    """The nodes, the balancer in front of them, and what they share."""

    nodes: list[Server]
    balancer: Nginx
    redis: RedisServer
    env: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.balancer.base_url

    def stop(self) -> None:
        self.balancer.stop()
        for node in self.nodes:
            node.stop()
        self.redis.stop()


#: Each node believes the balancer (loopback) about the client's address and scheme.
NODE_ENV = {"ASSETFILES_TRUSTED_PROXIES": '["127.0.0.1/32"]'}
BALANCED = """
client_max_body_size 0;
location / {
  proxy_pass http://assetfiles;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_read_timeout 120s;
  proxy_next_upstream error timeout;
}
"""


@contextmanager
def running_cluster(
    root: Path, document: dict[str, Any], files: dict[str, bytes], node_env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Seed one catalog and bucket, start Redis, two nodes on them and nginx in front."""
    reason = missing_parts()
    if reason:
        raise RuntimeError(reason)
    redis_server = start_redis(root / "redis")
    nodes: list[Server] = []
    try:
        seeded = seed(root / "seed", document, files)
        shared = {
            **backend_env(seeded),
            "ASSETFILES_SECRET_KEY": SECRET_KEY,
            "ASSETFILES_RATE_LIMIT_STORAGE": redis_server.url,
            **NODE_ENV,
            **(node_env or {}),
        }
        for name in ("node-a", "node-b"):
            data_dir = root / name / "data"
            data_dir.mkdir(parents=True)
            nodes.append(start_server(data_dir, shared))
        upstream = "\n".join(
            f"server {node.base_url.removeprefix('http://')} max_fails=1 fail_timeout=30s;" for node in nodes
        )
        balancer = start_nginx(root / "nginx", upstream + "\nkeepalive 32;", BALANCED)
    except BaseException:
        for node in nodes:
            node.stop()
        redis_server.stop()
        raise
    cluster = Cluster(nodes, balancer, redis_server, shared, files)
    try:
        yield cluster
    finally:
        cluster.stop()
