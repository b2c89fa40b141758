"""Starting a real assetfiles server in a subprocess, and talking to it over HTTP."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

SECRET_KEY = "test-signing-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assetfiles", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@dataclass
class Server:
    """A running ``assetfiles serve`` process and the world it was seeded with."""

    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/api/graphql"

    def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = "tok-acme-rw-0123456789",
        scheme: str = "Automation",
    ) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        return httpx.post(
            self.graphql_url, json={"query": query, "variables": variables}, headers=headers, timeout=30
        )

    def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Run a query that must succeed; return its data."""
        response = self.gql(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def error(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Run a query that must fail in execution; return its first error."""
        response = self.gql(query, variables, **kwargs)
        body = response.json()
        assert body.get("errors"), body
        first: dict[str, Any] = body["errors"][0]
        first["_status"] = response.status_code
        return first

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "ASSETFILES_SECRET_KEY": SECRET_KEY,
        **(extra_env or {}),
    }
    log = (data_dir.parent / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "assetfiles", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir.parent / f'server-{port}.log').read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return Server(base_url, data_dir, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start in 30 s")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_fixture(directory: Path, document: dict[str, Any], files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    fixture = directory / "fixture.yaml"
    fixture.write_text(yaml.safe_dump(document, sort_keys=False))
    return fixture
