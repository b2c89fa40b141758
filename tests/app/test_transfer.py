"""Signed download URLs: bytes, Range, If-Range, ETag, If-None-Match, digests, tampering, expiry."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from assetfiles.service.signing import UrlSigner
from tests.backends import BLOBS
from tests.helpers import SECRET_KEY, Server

pytestmark = pytest.mark.skipif(
    BLOBS != "local",
    reason="the transfer endpoint serves local blobs; on S3 downloads are the store's presigned URLs",
)

CONTENT = "query C($id: ID!, $ttl: Int) { content(id: $id, expiresIn: $ttl) { id url expiresAt name } }"
LIST = """query($f: ContentFilters) { assetContents(filters: $f) { assetContents { id name } } }"""


def content_id(server: Server, name: str) -> str:
    items = server.data(LIST, {"f": {"association": {"type": "asset", "id": "a-pump-7"}}})["assetContents"]
    found: str = next(item["id"] for item in items["assetContents"] if item["name"] == name)
    return found


@pytest.fixture(scope="module")
def data_url(server: Server) -> str:
    url: str = server.data(CONTENT, {"id": content_id(server, "data 1.bin")})["content"]["url"]
    return url


@pytest.fixture(scope="module")
def data_bytes(server: Server) -> bytes:
    return server.files["files/data.bin"]


def test_full_download_headers(server: Server, data_url: str, data_bytes: bytes) -> None:
    response = server.get(data_url)
    assert response.status_code == 200
    assert response.content == data_bytes
    digest = hashlib.sha256(data_bytes)
    assert response.headers["etag"] == f'"{digest.hexdigest()}"'
    assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
    assert response.headers["content-length"] == str(len(data_bytes))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"data 1.bin\"; filename*=UTF-8''data%201.bin"
    )


def test_head_has_headers_and_no_body(server: Server, data_url: str, data_bytes: bytes) -> None:
    response = server.head(data_url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data_bytes))
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-1023", 0, 1024), ("bytes=1000-", 1000, None), ("bytes=-500", -500, None), ("bytes=5-5", 5, 6)],
)
def test_single_ranges(
    server: Server, data_url: str, data_bytes: bytes, header: str, start: int, end: int | None
) -> None:
    response = server.get(data_url, headers={"Range": header})
    assert response.status_code == 206
    expected = data_bytes[start:end]
    assert response.content == expected
    first = start % len(data_bytes)
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data_bytes)}"


def test_unsatisfiable_range_is_416_with_length(server: Server, data_url: str, data_bytes: bytes) -> None:
    response = server.get(data_url, headers={"Range": f"bytes={len(data_bytes)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data_bytes)}"


def test_malformed_range_is_400(server: Server, data_url: str) -> None:
    response = server.get(data_url, headers={"Range": "lines=1-2"})
    assert response.status_code == 400


def test_if_range_with_current_etag_gives_partial(server: Server, data_url: str, data_bytes: bytes) -> None:
    etag = f'"{hashlib.sha256(data_bytes).hexdigest()}"'
    response = server.get(data_url, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert response.status_code == 206
    assert response.content == data_bytes[10:20]


def test_if_range_with_stale_etag_gives_whole_file(server: Server, data_url: str, data_bytes: bytes) -> None:
    response = server.get(data_url, headers={"Range": "bytes=10-19", "If-Range": '"stale"'})
    assert response.status_code == 200
    assert response.content == data_bytes


def test_if_none_match(server: Server, data_url: str, data_bytes: bytes) -> None:
    etag = f'"{hashlib.sha256(data_bytes).hexdigest()}"'
    response = server.get(data_url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert server.get(data_url, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert server.get(data_url, headers={"If-None-Match": '"other"'}).status_code == 200


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.parametrize(
    "change",
    [
        {"sig": "A" * 43},
        {"org": "o-other"},
        {"exp": str(int(time.time()) + 10**6)},
        {"exp": "soon"},
    ],
)
def test_tampered_urls_are_403(server: Server, data_url: str, change: dict[str, str]) -> None:
    response = server.get(_with(data_url, **change))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


def test_url_for_another_content_is_403(server: Server, data_url: str) -> None:
    other = content_id(server, "manual.pdf")
    path = urlsplit(data_url)
    forged = path._replace(path=f"/transfer/content/{other}").geturl()
    assert server.get(forged).status_code == 403


def test_unsigned_url_is_403(server: Server, data_url: str) -> None:
    bare = urlsplit(data_url)._replace(query="").geturl()
    response = server.get(bare)
    assert response.status_code == 403
    assert "not signed" in response.json()["error"]["message"]


def test_expired_url_is_403(server: Server) -> None:
    item = content_id(server, "manual.pdf")
    signer = UrlSigner(SECRET_KEY.encode(), 600)
    expired = signer.sign_until(UrlSigner.DOWNLOAD, "o-acme", item, int(time.time()) - 1)
    response = server.get(expired.absolute(server.base_url))
    assert response.status_code == 403
    assert "expired" in response.json()["error"]["message"]
    fresh = signer.sign_until(UrlSigner.DOWNLOAD, "o-acme", item, int(time.time()) + 60)
    assert server.get(fresh.absolute(server.base_url)).status_code == 200


def test_expires_at_and_expires_in(server: Server) -> None:
    item = content_id(server, "manual.pdf")
    before = time.time()
    content = server.data(CONTENT, {"id": item, "ttl": 30})["content"]
    exp = int(parse_qs(urlsplit(content["url"]).query)["exp"][0])
    assert before + 29 <= exp <= time.time() + 31
    assert content["expiresAt"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(exp)))
    default = server.data(CONTENT, {"id": item})["content"]
    default_exp = int(parse_qs(urlsplit(default["url"]).query)["exp"][0])
    assert before + 599 <= default_exp <= time.time() + 601


@pytest.mark.parametrize("ttl", [0, -1, 7 * 24 * 3600 + 1])
def test_bad_expires_in(server: Server, ttl: int) -> None:
    error = server.error(CONTENT, {"id": content_id(server, "manual.pdf"), "ttl": ttl})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "expiresIn"}


def test_download_of_deleted_content_is_404(server: Server) -> None:
    upload = server.data(
        """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }""",
        {
            "i": {
                "name": "short-lived.txt",
                "length": 3,
                "sha256": hashlib.sha256(b"abc").hexdigest(),
                "associations": [{"type": "asset", "id": "a-empty"}],
            }
        },
    )["createContentUpload"]
    assert server.put(upload["uploadUrl"], content=b"abc").status_code == 201
    url = server.data(CONTENT, {"id": upload["id"]})["content"]["url"]
    assert server.get(url).content == b"abc"  # its bytes are now kept in memory (blob_cache.py)
    server.data("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": upload["id"]})
    assert server.get(url).status_code == 404


def _uploaded(server: Server, name: str, data: bytes, content_type: str) -> str:
    """A new content of the empty asset; its signed download URL."""
    upload = server.data(
        """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }""",
        {
            "i": {
                "name": name,
                "contentType": content_type,
                "length": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "associations": [{"type": "asset", "id": "a-empty"}],
            }
        },
    )["createContentUpload"]
    assert server.put(upload["uploadUrl"], content=data).status_code == 201
    url: str = server.data(CONTENT, {"id": upload["id"]})["content"]["url"]
    return url


@pytest.mark.parametrize("size", [0, 16 * 1024, 64 * 1024, 64 * 1024 + 1])
def test_small_and_large_files_answer_the_same_headers(server: Server, size: int) -> None:
    """Files up to 64 KiB are answered from memory, larger ones from the file: the same answer."""
    data = (b"t,v\n" * (size // 4 + 1))[:size]
    url = _uploaded(server, f"readings-{size}.csv", data, "text/csv")
    for attempt in range(2):  # the first read fills the cache, the second is answered from it
        response = server.get(url)
        assert response.status_code == 200 and response.content == data, attempt
        digest = hashlib.sha256(data)
        assert response.headers["content-type"] == "text/csv"  # as stored: no charset added
        assert response.headers["content-length"] == str(size)
        assert response.headers["etag"] == f'"{digest.hexdigest()}"'
        assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["cache-control"] == "private, no-transform"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "last-modified" in response.headers and "x-request-id" in response.headers
        assert response.headers["content-disposition"].startswith(
            f'attachment; filename="readings-{size}.csv"'
        )
    if size:
        ranged = server.get(url, headers={"Range": "bytes=1-2"})
        assert ranged.status_code == 206 and ranged.content == data[1:3]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/transfer/content/c-1", 405),
        ("GET", "/transfer/content/a/b", 404),
        ("GET", "/transfer/content/", 404),
    ],
)
def test_paths_beside_the_download_route_answer_as_before(
    server: Server, method: str, path: str, status: int
) -> None:
    """The download route is dispatched before the router (server/hot_routes.py); what it does not
    match is the router's, which answers as for any unknown path or method."""
    answer = server.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}[status]
