"""Debian's nginx in front of assetfiles with X-Accel-Redirect: Python authenticates, nginx serves."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.backends import local_blobs_only
from tests.helpers import Server, run_cli, start_server, write_fixture
from tests.nginx import MISSING, nginx_binary, start_nginx

pytestmark = local_blobs_only

TOKEN = "tok-nginx-rw-0123456789"
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    if nginx_binary() is None:
        pytest.skip(MISSING)
    root = tmp_path_factory.mktemp("nginx-world")
    document = {"organizations": [{"id": "o-n", "tokens": [{"name": "rw", "secret": TOKEN,
                "permissions": ["read", "write"]}], "assets": [{"id": "a", "name": "A",
                "content": [{"path": "files/data.bin", "name": "data file.bin"}]}]}]}  # fmt: skip
    fixture = write_fixture(root, document, {"files/data.bin": DATA})
    data_dir = root / "data"
    assert run_cli("apply", str(fixture), "--data-dir", str(data_dir)).returncode == 0
    server = start_server(data_dir, {"ASSETFILES_ACCEL_REDIRECT_PREFIX": "/_blobs/"})
    upstream = server.base_url.removeprefix("http://")
    nginx = start_nginx(
        root / "nginx",
        f"server {upstream}; keepalive 16;",
        f"""
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
        """,
    )
    yield server, nginx.base_url
    nginx.stop()
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
