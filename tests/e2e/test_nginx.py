"""Debian's nginx in front of assetfiles with X-Accel-Redirect: Python authenticates, nginx serves."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assetfiles.cli.background import free_port
from tests.backends import local_blobs_only
from tests.helpers import Server, run_cli, start_server, write_fixture

pytestmark = local_blobs_only

TOKEN = "tok-nginx-rw-0123456789"
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (Debian package 'nginx'; .ci/run installs it when it can)")
    root = tmp_path_factory.mktemp("nginx-world")
    document = {"organizations": [{"id": "o-n", "tokens": [{"name": "rw", "secret": TOKEN,
                "permissions": ["read", "write"]}], "assets": [{"id": "a", "name": "A",
                "content": [{"path": "files/data.bin", "name": "data file.bin"}]}]}]}  # fmt: skip
    fixture = write_fixture(root, document, {"files/data.bin": DATA})
    data_dir = root / "data"
    assert run_cli("apply", str(fixture), "--data-dir", str(data_dir)).returncode == 0
    server = start_server(data_dir, {"ASSETFILES_ACCEL_REDIRECT_PREFIX": "/_blobs/"})
    port = free_port()
    upstream = server.base_url.removeprefix("http://")
    conf = root / "nginx.conf"
    # Test directories under /tmp/pytest-of-<user> are private: workers run as the same user.
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
    conf.write_text(textwrap.dedent(f"""
        {user}
        worker_processes 1;
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/nginx-error.log;
        events {{ worker_connections 256; }}
        http {{
          access_log off;
          client_body_temp_path {root}/body;
          proxy_temp_path {root}/proxy;
          fastcgi_temp_path {root}/fastcgi;
          uwsgi_temp_path {root}/uwsgi;
          scgi_temp_path {root}/scgi;
          upstream assetfiles {{ server {upstream}; keepalive 16; }}
          server {{
            listen 127.0.0.1:{port};
            client_max_body_size 0;
            location / {{
              proxy_pass http://assetfiles;
              proxy_http_version 1.1;
              proxy_set_header Connection "";
              proxy_set_header Host $http_host;
              proxy_request_buffering off;
              proxy_buffering off;
            }}
            location /_blobs/ {{
              internal;
              alias {data_dir}/blobs/;
              sendfile on;
              add_header Repr-Digest $upstream_http_repr_digest always;
            }}
          }}
        }}
        """))  # fmt: skip
    nginx = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/healthz", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield server, base
    nginx.terminate()
    nginx.wait()
    server.stop()


def signed_url(server: Server, base: str) -> str:
    """The content's URL as a client behind nginx gets it (the Host is nginx's)."""
    response = httpx.post(
        f"{base}/api/graphql",
        json={"query": '{ assetContents(filters: {association: {type: "asset", id: "a"}}) '
                       "{ assetContents { url } } }"},
        headers={"Authorization": f"Automation {TOKEN}"},
    )  # fmt: skip
    url: str = response.json()["data"]["assetContents"]["assetContents"][0]["url"]
    assert url.startswith(base)
    return url


def test_nginx_serves_the_bytes_after_assetfiles_authenticates(offloaded: tuple[Server, str]) -> None:
    server, base = offloaded
    url = signed_url(server, base)
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["server"].startswith("nginx")
    assert "data file.bin" in whole.headers["content-disposition"]
    assert whole.headers["repr-digest"].startswith("sha-256=:")
    assert "x-accel-redirect" not in whole.headers
    for header, status, expected in [
        ("bytes=0-1023", 206, DATA[:1024]),
        ("bytes=-4", 206, b"tail"),
        ("bytes=1048576-", 206, DATA[1048576:]),
    ]:
        ranged = httpx.get(url, headers={"Range": header})
        assert ranged.status_code == status and ranged.content == expected, header
        assert ranged.headers["content-range"].endswith(f"/{len(DATA)}")
    etag = whole.headers["etag"]
    resumed = httpx.get(url, headers={"Range": "bytes=100-", "If-Range": etag})
    assert resumed.status_code == 206 and resumed.content == DATA[100:]
    assert httpx.get(url, headers={"Range": "bytes=99999999-"}).status_code == 416


def test_refused_requests_never_reach_the_files(offloaded: tuple[Server, str]) -> None:
    server, base = offloaded
    url = signed_url(server, base)
    tampered = url.replace("sig=", "sig=0")
    assert httpx.get(tampered).status_code == 403
    digest = __import__("hashlib").sha256(DATA).hexdigest()
    assert httpx.get(f"{base}/_blobs/{digest[:2]}/{digest[2:4]}/{digest}").status_code == 404


def test_without_nginx_the_answer_is_an_empty_redirect(offloaded: tuple[Server, str]) -> None:
    server, base = offloaded
    url = signed_url(server, base).replace(base, server.base_url)
    direct = httpx.get(url)
    assert direct.status_code == 200 and direct.content == b""
    assert direct.headers["x-accel-redirect"].startswith("/_blobs/")
