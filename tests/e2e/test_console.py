"""The console's serving rules (no browser): its headers, its files, what it may load, and the API
additions and checks it relies on. tests/e2e/test_console_browser.py drives it in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from assetfiles.config import Settings
from assetfiles.server.console import STATIC_DIR, security_headers
from tests.conftest import RO, RW
from tests.helpers import Server

PAGES = ["/console", "/console/static/js/app.js", "/console/static/console.css"]


@pytest.mark.parametrize("path", PAGES)
def test_every_console_answer_carries_the_security_headers(server: Server, path: str) -> None:
    answer = httpx.get(f"{server.base_url}{path}")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_modules_are_served_as_javascript(server: Server) -> None:
    for path in ("js/app.js", "vendor/pdfjs/pdf.min.mjs", "vendor/noble-hashes/sha2.js"):
        answer = httpx.head(f"{server.base_url}/console/static/{path}")
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/javascript"), path


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../__init__.py",
        "/console/static/%2e%2e/__init__.py",
        "/console/static/..%2f__init__.py",
        "/console/static/js/missing.js",
        "/console/static/",
        "/console/refresh-vendor.sh",
    ],
)
def test_nothing_outside_the_static_files_is_served(server: Server, path: str) -> None:
    answer = httpx.get(f"{server.base_url}{path}")
    assert answer.status_code == 404
    assert b"import" not in answer.content and b"#!/usr/bin/env" not in answer.content


def test_wrong_methods_and_the_trailing_slash(server: Server) -> None:
    assert httpx.post(f"{server.base_url}/console").status_code == 405
    moved = httpx.get(f"{server.base_url}/console/")
    assert moved.status_code == 308 and moved.headers["location"] == "/console"


def test_the_page_runs_no_inline_script_and_fetches_nothing_from_elsewhere() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, flags=re.S)
    assert scripts == ["", ""]  # tus-js-client's bundle and one module, loaded from our own files
    sources = re.findall(r'<script\b[^>]*\bsrc="([^"]+)"', page)
    assert sources == ["/console/static/vendor/tus-js-client/tus.min.js", "/console/static/js/app.js"]
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    ours = [*STATIC_DIR.glob("*.html"), *STATIC_DIR.glob("*.css"), *STATIC_DIR.glob("js/*.js")]
    for path in ours:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert not re.search(r"innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write", text), path
        assert not re.search(r"\beval\(|new Function\(", text), path


def test_vendored_code_carries_its_licence_and_version() -> None:
    for library in ("noble-hashes", "pdfjs", "tus-js-client"):
        folder = STATIC_DIR / "vendor" / library
        assert (folder / "LICENSE").stat().st_size > 500
        assert re.match(r"\S+ \d+\.\d+\.\d+ \(npm registry\)", (folder / "VERSION").read_text())
    pins = (STATIC_DIR.parent / "refresh-vendor.sh").read_text()
    assert "NOBLE_HASHES=2.4.0" in pins and "PDFJS=6.5.438" in pins and "TUS_JS_CLIENT=4.3.1" in pins
    assert "4.3.1" in (STATIC_DIR / "vendor" / "tus-js-client" / "VERSION").read_text()
    assert "2.4.0" in (STATIC_DIR / "vendor" / "noble-hashes" / "VERSION").read_text()
    assert "6.5.438" in (STATIC_DIR / "vendor" / "pdfjs" / "VERSION").read_text()


def test_the_package_ships_every_console_file() -> None:
    """pyproject's package-data globs cover every file the console serves."""
    import tomllib

    globs = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["assetfiles"]
    package = STATIC_DIR.parent.parent.parent
    shipped = {path for pattern in globs for path in package.glob(pattern)}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            assert path in shipped, path


def test_object_store_origins_join_the_policy() -> None:
    local = security_headers(Settings(secret_key="k" * 32))["Content-Security-Policy"]
    assert "connect-src 'self';" in local
    s3 = Settings(
        secret_key="k" * 32, blob_url="s3://bucket/x", s3_endpoint_url="https://minio.example:9000/"
    )
    policy = security_headers(s3)["Content-Security-Policy"]
    assert "img-src 'self' https://minio.example:9000 blob: data:" in policy
    assert "connect-src 'self' https://minio.example:9000;" in policy


def test_the_console_can_be_switched_off(tmp_path: Path) -> None:
    import asyncio

    from assetfiles.server.app import create_app, routes_of

    async def scenario() -> int:
        app = create_app(Settings(data_dir=tmp_path, secret_key="k" * 32, console=False))
        inner = routes_of(app)
        async with (
            inner.router.lifespan_context(inner),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
        ):
            return (await client.get("/console")).status_code

    assert asyncio.run(scenario()) == 404


CURRENT = "{ currentToken { name organizationId permissions canWrite } }"


def test_current_token_tells_what_the_token_may_do(server: Server) -> None:
    assert server.data(CURRENT, token=RW)["currentToken"] == {
        "name": "rw",
        "organizationId": "o-acme",
        "permissions": ["read", "write"],
        "canWrite": True,
    }
    assert server.data(CURRENT, token=RO)["currentToken"]["canWrite"] is False
    for token in (None, "tok-unknown-0123456789"):
        assert server.error(CURRENT, token=token)["extensions"]["code"] == "UNAUTHENTICATED"


FILTERED = """query($f: ContentFilters) { assetContents(filters: $f) { totalCount } }"""


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"contentTypes": ["not a type"]}, "filters.contentTypes[0]"),
        ({"contentTypes": ["text/csv", "tëxt/csv"]}, "filters.contentTypes[1]"),
        ({"contentTypes": [f"text/t{i}" for i in range(101)]}, "filters.contentTypes"),
        ({"tags": [{"name": f"t{i}", "value": None} for i in range(51)]}, "filters.tags"),
        ({"name": "*" * 1025}, "filters.name"),
    ],
)
def test_listing_filters_are_bounded_and_checked(
    server: Server, filters: dict[str, object], field: str
) -> None:
    filters = {"association": {"type": "asset", "id": "a-pump-7"}, **filters}
    error = server.error(FILTERED, {"f": filters})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert error["message"].startswith(field)


def test_filters_at_their_bounds_are_answered(server: Server) -> None:
    filters = {
        "association": {"type": "asset", "id": "a-pump-7"},
        "contentTypes": [f"text/t{i}" for i in range(100)],
        "tags": [{"name": f"t{i}", "value": None} for i in range(50)],
        "name": "*" * 1024,
    }
    assert server.data(FILTERED, {"f": filters})["assetContents"]["totalCount"] == 0
