"""Starting a real assetfiles server in a subprocess, and talking to it over HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from assetfiles.cli.background import BackgroundServer
from tests.backends import backend_env

SECRET_KEY = "test-signing-key-0123456789abcdef"


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m assetfiles ARGS``; a ``--data-dir`` (or ``demo --dir``) gets the catalog backend,
    and the servers' key (it keys token hashes: a command must use the server's, as it would in a
    deployment sharing one config)."""
    backend: dict[str, str] = {"ASSETFILES_SECRET_KEY": SECRET_KEY}
    for flag, suffix in (("--data-dir", ""), ("--dir", "server")):
        if flag in args and args.index(flag) + 1 < len(args):
            backend.update(backend_env(Path(args[args.index(flag) + 1]) / suffix))
    return subprocess.run(
        [sys.executable, "-m", "assetfiles", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **backend, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@dataclass
class Server:
    """A running ``assetfiles serve`` process and the world it was seeded with."""

    base_url: str
    data_dir: Path
    background: BackgroundServer
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
        return self.post(self.graphql_url, json={"query": query, "variables": variables}, headers=headers)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request over a real socket (the app tier's server sends it into the app instead)."""
        kwargs.setdefault("timeout", 30)
        if self.background is not None and self.background.certificate:
            # the server's own certificate
            kwargs.setdefault("verify", ssl.create_default_context(cafile=self.background.certificate))
        return httpx.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

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
        self.background.stop()


#: The suite makes thousands of requests, and hundreds of deliberately failed sign-ins, from one
#: address within minutes: its servers run without rate limits unless a test sets them.
NO_RATE_LIMITS = {
    "ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "",
    "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": "",
    "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "0",
}


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    env = {
        "ASSETFILES_SECRET_KEY": SECRET_KEY,
        **NO_RATE_LIMITS,
        **backend_env(data_dir),
        **(extra_env or {}),
    }
    background = BackgroundServer(data_dir, env=env, log=data_dir.parent / f"server-{data_dir.name}.log")
    background.start(timeout=30)
    return Server(background.base_url, data_dir, background)


def temporaries(data_dir: Path) -> list[str]:
    """Temporary files and EnOS spool directories left in a local data directory."""
    places = [data_dir / "tmp", data_dir / "blobs" / "tmp"]
    return sorted(str(path) for place in places if place.exists() for path in place.iterdir())


def kill_server(server: Server) -> None:
    """SIGKILL the server and every worker it started: nothing gets to clean up."""
    process = server.background.process
    assert process is not None
    for pid in descendants(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)
    server.background.process = None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (its workers, theirs...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def server_sent_events(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The named events in a server-sent event stream's lines: their event, id and data fields as
    sent (comments, retry hints and unnamed blocks are skipped)."""
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if "event" in current:
                yield current
            current = {}
            continue
        name, _, value = line.partition(":")
        if name in ("event", "id", "data"):
            current[name] = value.strip()


def md5hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def encryption(app_key: str, timestamp: int | str, secret: str) -> str:
    """EnOS's token-service signature: sha256(appKey + timestamp + appSecret), lowercase hex."""
    return hashlib.sha256(f"{app_key}{timestamp}{secret}".encode()).hexdigest()


def device_login_sign(product_key: str, device_key: str, lifetime: int, secret: str) -> str:
    """EnOS's device login signature, as the device SDK's SignUtil makes it: each parameter as key
    then value, keys sorted, then the device secret; sha256, lowercase hex."""
    params = {
        "productKey": product_key,
        "deviceKey": device_key,
        "lifetime": str(lifetime),
        "signMethod": "sha256",
    }
    return hashlib.sha256(
        ("".join(key + params[key] for key in sorted(params)) + secret).encode()
    ).hexdigest()


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


def seed(
    root: Path, document: dict[str, Any], files: dict[str, bytes], env: dict[str, str] | None = None
) -> Path:
    """Write a fixture under ``root`` and apply it into ``root/data`` with the CLI, as a user would;
    ``apply`` gets the server's key (it seals EnOS application secrets with it) and ``env``."""
    fixture = write_fixture(root, document, files)
    data_dir = root / "data"
    apply_env = {"ASSETFILES_SECRET_KEY": SECRET_KEY, **(env or {})}
    applied = run_cli("apply", str(fixture), "--data-dir", str(data_dir), env=apply_env)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    return data_dir


def seed_and_start(
    root: Path,
    document: dict[str, Any],
    files: dict[str, bytes],
    server_env: dict[str, str] | None = None,
    *,
    env: dict[str, str] | None = None,
) -> Server:
    """Seed ``root/data`` (see :func:`seed`) and serve it from a subprocess.

    ``env`` goes to ``apply`` and the server (a blob store, say); ``server_env`` to the server only.
    """
    data_dir = seed(root, document, files, env)
    server = start_server(data_dir, {**(env or {}), **(server_env or {})})
    server.files = files
    return server
