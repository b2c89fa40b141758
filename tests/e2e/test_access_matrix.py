"""The access matrix: every operation of every face against every kind of wrong credential.

The operations are discovered, not listed by hand: the GraphQL schema's queries and mutations,
EnOS's file and integration actions, the token service, and every other route of the app. Each
must have an entry in ``MATRIX`` (a new operation without one fails
``test_every_operation_has_an_entry``), and each entry is tried with: no credential, malformed
ones, a forged one, an expired one, a revoked one, another organization's, a read-only one for
writes, another device's secret, and signed URLs retargeted, tampered with or expired. Nothing
may answer with the organization's data, and a foreign object must answer exactly like a missing
one.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from graphql import build_schema
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from assetfiles.config import Settings
from assetfiles.server.app import create_app, routes_of
from assetfiles.server.enos import FILE_ACTIONS
from assetfiles.service.enos_uploads import ACTIONS as INTEGRATION_ACTIONS
from tests.backends import BLOBS
from tests.e2e.test_enos import APPS, GQL_TOKEN, OTHER_APP, access_token, enos_document, enos_files, uris
from tests.helpers import Server, device_login_sign, encryption, md5hex, run_cli, seed_and_start, start_server

RO_TOKEN = "tok-enos-ro-0123456789"
FOREIGN_TOKEN = "tok-foreign-rw-0123456789"
FORGED_TOKEN = "tok-forged-" + "7" * 20
EXPIRED_TOKEN = "tok-expired-0123456789"
REVOKED_TOKEN = "tok-revoked-0123456789"
MALFORMED_AUTH = ["Automation", "Basic dXNlcjpwYXNz", "Automation " + "x" * 5000, "Token\ttok"]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
#: Lifetime of the EnOS token minted to be expired (by a second server on the same catalog, so
#: the world's own tokens keep the default lifetime: a token request returns the application's
#: current token with its remaining life, which a short lifetime would let run out mid-test).
EXPIRING_TTL = 1


def _document() -> dict[str, Any]:
    document = copy.deepcopy(enos_document())
    enos_org, foreign = document["organizations"]
    enos_org["tokens"].append({"name": "ro", "secret": RO_TOKEN, "permissions": ["read"]})
    foreign["tokens"] = [{"name": "rw", "secret": FOREIGN_TOKEN, "permissions": ["read", "write"]}]
    return document


@dataclass
class World:
    server: Server
    #: name -> content id of o-enos's contents (users' and device d1's)
    ids: dict[str, str]
    #: strings that must never appear in an answer to a caller outside o-enos
    secrets: list[str]
    expired_enos_token: str
    expired_download: str
    expired_upload: str

    @property
    def base(self) -> str:
        return self.server.base_url

    def enos_token(self, app: str = "ak-rw") -> str:
        return access_token(self.server, app)

    def gql(self, query: str, variables: dict[str, Any], authorization: str | None) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return httpx.post(
            f"{self.base}/api/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    def signed_url(self, name: str, expires_in: int | None = None) -> str:
        query = "query($id: ID!, $e: Int) { content(id: $id, expiresIn: $e) { url } }"
        data = self.gql(query, {"id": self.ids[name], "e": expires_in}, f"Automation {GQL_TOKEN}").json()
        url: str = data["data"]["content"]["url"]
        return url

    def upload_url(self, expires_in: int | None = None) -> str:
        data = os.urandom(10)
        upload = self.gql(
            "mutation($i: ContentUploadInput!, $e: Int) { createContentUpload(input: $i, expiresIn: $e) "
            "{ uploadUrl } }",
            {"i": {"name": "m.bin", "associations": [{"type": "asset", "id": "a2"}], "length": 10,
                   "sha256": hashlib.sha256(data).hexdigest()}, "e": expires_in},
            f"Automation {GQL_TOKEN}",
        ).json()  # fmt: skip
        url: str = upload["data"]["createContentUpload"]["uploadUrl"]
        return url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("matrix")
    server = seed_and_start(root, _document(), enos_files(), {"ASSETFILES_ENOS_REFRESH_GRACE_SECONDS": "0"})
    try:
        data_dir = str(server.data_dir)
        for name, secret, extra in (("expired", EXPIRED_TOKEN, ["--expires-in", "1"]),
                                    ("revoked", REVOKED_TOKEN, [])):  # fmt: skip
            permissions = ["--permission", "read", "--permission", "write"]
            made = run_cli("token", "create", "--org", "o-enos", "--name", name, "--secret", secret,
                           *permissions, *extra, "--data-dir", data_dir)  # fmt: skip
            assert made.returncode == 0, made.stderr
        revoked = run_cli("token", "revoke", "--org", "o-enos", "--name", "revoked", "--data-dir", data_dir)
        assert revoked.returncode == 0, revoked.stderr
        listing = server.data(
            """query($d: [AssetContentsDeviceInput]) { assetContents(filters: {association:
               {type: "asset", id: "a1"}}, devices: $d) { assetContents { id name } } }""",
            {"d": None},
            token=GQL_TOKEN,
        )["assetContents"]["assetContents"]
        ids = {item["name"]: item["id"] for item in listing}
        world = World(server, ids, [], "", "", "")
        # what another caller must never see (ids it sends may be echoed in "not found")
        world.secrets = [*ids, "Asset one", "Asset two"]
        minting = start_server(server.data_dir, {"ASSETFILES_ENOS_TOKEN_TTL_SECONDS": str(EXPIRING_TTL)})
        try:
            world.expired_enos_token = access_token(minting, "ak-rw")
        finally:
            minting.stop()
        world.expired_download = world.signed_url("feature.bin", expires_in=1)
        world.expired_upload = world.upload_url(expires_in=1)
        time.sleep(EXPIRING_TTL + 1.1)
        yield world
    finally:
        server.stop()


# -- the operations -------------------------------------------------------------------------------


def discovered_operations() -> set[str]:
    schema_file = Path(__file__).parents[2] / "src/assetfiles/server/graphql/schema.graphql"
    schema = build_schema(schema_file.read_text())
    operations = {f"graphql {kind.name}.{name}" for kind in (schema.query_type, schema.mutation_type)
                  if kind is not None for name in kind.fields}  # fmt: skip
    operations |= {f"enos files {action}" for action in FILE_ACTIONS}
    operations |= {f"enos integration {action}" for action in INTEGRATION_ACTIONS}
    app = routes_of(create_app(Settings(data_dir=Path("/nonexistent"), secret_key="k" * 32)))
    assert isinstance(app, Starlette)
    # the GraphQL endpoint and EnOS's action endpoints are counted by operation above
    covered = {"/api/graphql": {"POST"}, "/connect-service/v2.1/files": {"GET", "POST"},
               "/connect-service/v2.1/integration": {"POST"}}  # fmt: skip
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"} - covered.get(route.path, set())):
                operations.add(f"route {method} {route.path}")
        elif isinstance(route, Mount):
            operations.add(f"route GET {route.path}/*")
    return operations


# Each GraphQL operation: (document, variables for o-enos's objects, kind). Kinds: "object" (a
# foreign id must answer like an unknown one), "listing" (a foreign filter lists nothing), "own"
# (about the caller's organization), "mutation" (a write).
GRAPHQL: dict[str, tuple[str, Callable[[World], dict[str, Any]], str]] = {
    "Query.asset": ("query($id: ID!) { asset(id: $id) { id name } }", lambda w: {"id": "a2"}, "object"),
    "Query.assets": ("query($ids: [ID]) { assets(ids: $ids) { id name } }",
                     lambda w: {"ids": ["a2"]}, "listing"),
    "Query.assetsCount": ("query { assetsCount(filters: {text: \"Asset t\"}) }", lambda w: {}, "own"),
    "Query.currentToken": ("{ currentToken { name organizationId } }", lambda w: {}, "own"),
    "Query.organizationUsage": ("{ organizationUsage { org storedBytes } }", lambda w: {}, "own"),
    "Query.assetContents": (
        """query($id: [ID!]) { assetContents(filters: {association: {type: "asset", id: "a2"}}, id: $id)
           { totalCount assetContents { id name } } }""",
        lambda w: {"id": list(w.ids.values())},
        "object",
    ),
    "Query.content": ("query($id: ID!) { content(id: $id) { id name url } }",
                      lambda w: {"id": w.ids["feature.bin"]}, "object"),
    "Query.deviceAssetContent": (
        "query($i: DeviceAssetContentInput!) { deviceAssetContent(input: $i) { id url } }",
        lambda w: {"i": {"id": w.ids.get("devlog.csv", UNKNOWN_ID), "product_id": "p1", "device_id": "d1"}},
        "object",
    ),
    "Mutation.createContentUpload": (
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        lambda w: {"i": {"name": "x.bin", "associations": [{"type": "asset", "id": "a2"}], "length": 1,
                         "sha256": "0" * 64}},
        "mutation",
    ),
    "Mutation.setContentTags": (
        "mutation($id: ID!) { setContentTags(id: $id, tags: [{name: \"k\", value: \"v\"}]) { id } }",
        lambda w: {"id": w.ids["fw.bin"]},
        "mutation",
    ),
    "Mutation.deleteContent": ("mutation($id: ID!) { deleteContent(id: $id) { id } }",
                               lambda w: {"id": w.ids["fw.bin"]}, "mutation"),
}  # fmt: skip

#: The EnOS device HTTP API: a login, then everything by session (tests/e2e/test_enos_device.py).
ENOS_DEVICE_ROUTES = [
    ("POST", "/auth/{product_key}/{device_key}"),
    ("POST", "/multipart/sys/{product_key}/{device_key}/thing/measurepoint/post"),
    ("GET", "/multipart/sys/{product_key}/{device_key}/file/download"),
    ("GET", "/multipart/sys/{product_key}/{device_key}/file/download/url"),
    ("POST", "/multipart/sys/{product_key}/{device_key}/file/delete"),
]
#: The Murano device API: an activation, then everything by token (tests/e2e/test_murano_device.py).
MURANO_ROUTES = [
    ("POST", "/murano/{product_id}/provision/activate"),
    ("GET", "/murano/{product_id}/provision/download"),
    ("POST", "/provision/activate"),
    ("GET", "/provision/download"),
]

#: tus (tests/e2e/test_tus.py): creation by credential or at a reservation's signed URL, then the
#: upload's own URL.
TUS_ROUTES = [
    *((method, path) for method in ("POST", "OPTIONS") for path in ("/files", "/files/",
                                                                     "/transfer/uploads/{content_id}")),
    *(("/files/{upload_id}", method)[::-1] for method in ("PATCH", "DELETE", "POST", "OPTIONS")),
]  # fmt: skip

MATRIX: set[str] = (
    {f"graphql {name}" for name in GRAPHQL}
    | {f"enos files {action}" for action in FILE_ACTIONS}
    | {f"enos integration {action}" for action in INTEGRATION_ACTIONS}
    | {
        "route POST /apim-token-service/v2.0/token/get",
        "route POST /apim-token-service/v2.0/token/refresh",
        "route GET /api/graphql",
        "route GET /api/events",
        "route GET /transfer/content/{content_id}",
        "route PUT /transfer/uploads/{content_id}",
        *(f"route {method} {path}" for method, path in TUS_ROUTES),
        "route PUT /api/devices/{product_id}/{device_id}/content",
        "route POST /api/devices/{product_id}/{device_id}/content",
        "route GET /healthz",
        "route GET /readyz",
        "route GET /metrics",
        "route GET /openapi.json",
        "route GET /console",
        "route GET /console/",
        "route GET /console/static/*",
        *(f"route {method} {path}" for method, path in ENOS_DEVICE_ROUTES + MURANO_ROUTES),
    }
)


def test_every_operation_has_an_entry() -> None:
    discovered = discovered_operations()
    assert discovered - MATRIX == set(), "new operations need an entry in the access matrix"
    assert MATRIX - discovered == set(), "the matrix lists operations that no longer exist"


def _no_leak(world: World, response: httpx.Response) -> None:
    for secret in world.secrets:
        assert secret not in response.text, f"{secret!r} leaked: {response.text[:300]}"


def _shape(response: httpx.Response, ids: set[str]) -> Any:
    """An answer with the ids it was asked about blanked: a foreign object must answer exactly
    like an unknown one."""
    text = response.text
    for known in sorted(ids | {UNKNOWN_ID, "a-unknown"}, key=len, reverse=True):
        text = text.replace(known, "ID")
    return response.status_code, json.loads(text)


# -- GraphQL ----------------------------------------------------------------------------------------

BAD_GRAPHQL_CREDENTIALS = [None, *MALFORMED_AUTH, f"Automation {FORGED_TOKEN}", f"Bearer {FORGED_TOKEN}",
                           f"Automation {EXPIRED_TOKEN}", f"Automation {REVOKED_TOKEN}"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(GRAPHQL))
@pytest.mark.parametrize("authorization", BAD_GRAPHQL_CREDENTIALS, ids=lambda a: str(a)[:24])
def test_graphql_without_a_valid_credential_is_401(
    world: World, name: str, authorization: str | None
) -> None:
    document, variables, _kind = GRAPHQL[name]
    answer = world.gql(document, variables(world), authorization)
    assert answer.status_code == 401, answer.text
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert answer.json().get("data") is None
    _no_leak(world, answer)


@pytest.mark.parametrize("name", sorted(GRAPHQL))
def test_graphql_another_organization_sees_nothing(world: World, name: str) -> None:
    document, variables, kind = GRAPHQL[name]
    real = variables(world)
    answer = world.gql(document, real, f"Automation {FOREIGN_TOKEN}")
    _no_leak(world, answer)
    if kind in ("object", "mutation"):
        ids = set(world.ids.values()) | {"a2"}
        unknown = world.gql(document, _replace_ids(real, ids), f"Automation {FOREIGN_TOKEN}")
        assert _shape(answer, ids) == _shape(unknown, ids)
        if kind == "mutation" and name != "Mutation.createContentUpload":
            assert answer.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    if kind == "listing":
        data = answer.json()["data"]
        assert data in ({"assets": []}, {"assetContents": {"totalCount": 0, "assetContents": []}}), data


def _replace_ids(value: Any, ids: set[str]) -> Any:
    if isinstance(value, str) and value in ids:
        return value.replace(value, UNKNOWN_ID if "-" in value else "a-unknown")
    if isinstance(value, dict):
        return {key: _replace_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_ids(item, ids) for item in value]
    return value


@pytest.mark.parametrize("name", sorted(n for n, (_d, _v, kind) in GRAPHQL.items() if kind == "mutation"))
def test_graphql_read_only_token_cannot_write(world: World, name: str) -> None:
    document, variables, _kind = GRAPHQL[name]
    answer = world.gql(document, variables(world), f"Automation {RO_TOKEN}")
    assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer.text


def test_graphql_get_is_refused_whatever_the_credential(world: World) -> None:
    for headers in ({}, {"Authorization": f"Automation {GQL_TOKEN}"}):
        answer = httpx.get(f"{world.base}/api/graphql", params={"query": "{ currentToken { name } }"},
                           headers=headers)  # fmt: skip
        assert answer.status_code == 405 and "Asset one" not in answer.text


# -- EnOS -------------------------------------------------------------------------------------------


def _files_request(world: World, action: str, token: str | None, org: str = "o-enos") -> httpx.Response:
    method = FILE_ACTIONS[action][0]
    uri = uris(world.server)["feature.bin"]
    params = {"action": action, "orgId": org, "fileUri": uri, "assetId": "a1", "category": "feature"}
    headers = {"apim-accesstoken": token} if token is not None else {}
    return httpx.request(method, f"{world.base}/connect-service/v2.1/files", params=params, headers=headers)


BAD_ENOS_TOKENS = [None, "", "!!!", "x" * 5000, "0" * 32]


@pytest.mark.parametrize("action", sorted(FILE_ACTIONS))
def test_enos_files_without_a_valid_token(world: World, action: str) -> None:
    for token in [*BAD_ENOS_TOKENS, world.expired_enos_token]:
        answer = _files_request(world, action, token)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.json()["code"] in (401, 1203)
        _no_leak(world, answer)


@pytest.mark.parametrize("action", sorted(FILE_ACTIONS))
def test_enos_files_of_another_organization_look_missing(world: World, action: str) -> None:
    token = world.enos_token(OTHER_APP[0])
    for org in ("o-enos", "o-foreign"):
        answer = _files_request(world, action, token, org)
        _no_leak(world, answer)
        assert answer.status_code in (403, 404), answer.text
    if FILE_ACTIONS[action][1].value == "write":
        assert _files_request(world, action, world.enos_token("ak-ro")).status_code == 403


def _integration(world: World, action: str, token: str | None, asset: str = "a2") -> httpx.Response:
    data = b"matrix"
    message = json.dumps(
        {
            "params": [{"assetId": asset, "x": {"f": "local://m.bin"}}],
            "files": {"m.bin": {"featureId": "f", "assetId": asset, "md5": md5hex(data)}},
        }
    )
    headers = {"apim-accesstoken": token} if token is not None else {}
    return httpx.post(
        f"{world.base}/connect-service/v2.1/integration",
        params={"action": action, "orgId": "o-enos"},
        files=[("enos-message", (None, message)), ("enos-file", ("m.bin", data, "application/octet-stream"))],
        headers=headers,
    )


@pytest.mark.parametrize("action", sorted(INTEGRATION_ACTIONS))
def test_enos_integration_credentials(world: World, action: str) -> None:
    for token in [*BAD_ENOS_TOKENS, world.expired_enos_token]:
        answer = _integration(world, action, token)
        assert answer.status_code == 401 and answer.json()["code"] in (401, 1203), answer.text
    assert _integration(world, action, world.enos_token("ak-ro")).status_code == 403
    foreign = world.enos_token(OTHER_APP[0])
    # o-enos's asset, from another organization's application: exactly like an unknown asset
    mine, unknown = _integration(world, action, foreign), _integration(world, action, foreign, "a-nope")
    assert mine.status_code == unknown.status_code and mine.status_code in (403, 404), mine.text
    assert mine.json()["msg"].replace("a2", "ID") == unknown.json()["msg"].replace("a-nope", "ID")


def test_token_service_refuses_forged_and_replayed_requests(world: World) -> None:
    url = f"{world.base}/apim-token-service/v2.0/token"
    stamp = int(time.time() * 1000)
    forged = {"appKey": "ak-rw", "encryption": encryption("ak-rw", stamp, "guess"), "timestamp": stamp}
    stale = {"appKey": "ak-rw", "encryption": encryption("ak-rw", 1, APPS["ak-rw"][0]), "timestamp": 1}
    unknown = {"appKey": "ak-none", "encryption": encryption("ak-none", stamp, "x"), "timestamp": stamp}
    for body in (forged, stale, unknown, {}, {"appKey": "ak-rw"}):
        for path in ("get", "refresh"):
            answer = httpx.post(f"{url}/{path}", json={**body, "accessToken": "0" * 32})
            assert answer.json()["status"] != 0 and answer.json()["data"] is None, answer.text
    # another application's token cannot be refreshed with this application's signature
    other = world.enos_token(OTHER_APP[0])
    signature = encryption("ak-rw", stamp, APPS["ak-rw"][0])
    signed = {"appKey": "ak-rw", "encryption": signature, "timestamp": stamp, "accessToken": other}
    assert httpx.post(f"{url}/refresh", json=signed).json()["status"] != 0


# -- transfers and devices -------------------------------------------------------------------------


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _retarget(url: str, content_id: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rsplit("/", 1)[0] + "/" + content_id
    return urlunsplit(parts._replace(path=path))


def _bent_download_urls(world: World) -> list[str]:
    """Our signed URL bent every way a caller could: another content, a forged or blank signature,
    a later expiry, another organization, no query at all, an expired one."""
    url = world.signed_url("feature.bin")
    query = dict(parse_qsl(urlsplit(url).query))
    return [
        _retarget(url, world.ids["fw.bin"]),
        _retarget(url, UNKNOWN_ID),
        _with_query(url, sig=_forged(query["sig"])),
        _with_query(url, exp=str(int(query["exp"]) + 3600)),
        _with_query(url, org="o-foreign"),
        _with_query(url, sig=""),
        urlunsplit(urlsplit(url)._replace(query="")),
        world.expired_download,
    ]


def _bent_presigned_urls(world: World) -> list[str]:
    """The object store's presigned URL bent the same ways: another object's key, a forged or
    missing signature, a longer lifetime, another file name or type in the answer, an expired one."""
    url, other = world.signed_url("feature.bin"), world.signed_url("fw.bin")
    query = dict(parse_qsl(urlsplit(url).query))
    unsigned = {key: value for key, value in query.items() if key != "X-Amz-Signature"}
    return [
        urlunsplit(urlsplit(url)._replace(path=urlsplit(other).path)),
        _with_query(url, **{"X-Amz-Signature": _forged(query["X-Amz-Signature"])}),
        _with_query(url, **{"X-Amz-Expires": str(int(query["X-Amz-Expires"]) + 3600)}),
        _with_query(url, **{"response-content-disposition": 'attachment; filename="evil.exe"'}),
        _with_query(url, **{"response-content-type": "text/html"}),
        urlunsplit(urlsplit(url)._replace(query=urlencode(unsigned))),
        urlunsplit(urlsplit(url)._replace(query="")),
        world.expired_download,
    ]


def _forged(signature: str) -> str:
    return signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")


def test_signed_download_urls_cannot_be_bent(world: World) -> None:
    """On local blobs our signature guards the URL; on S3 the object store checks its own."""
    assert httpx.get(world.signed_url("feature.bin")).status_code == 200
    if BLOBS == "s3":
        for candidate in _bent_presigned_urls(world):
            answer = httpx.get(candidate)
            assert answer.status_code in (400, 403), (candidate, answer.status_code)  # 400: unsigned
            assert b"<Code>" in answer.content and enos_files()["files/feature.bin"] not in answer.content
        return
    for candidate in _bent_download_urls(world):
        answer = httpx.get(candidate)
        assert answer.status_code in (403, 404), (candidate, answer.status_code)
        assert answer.json()["error"]["code"] in ("FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT")


def test_signed_upload_urls_cannot_be_bent(world: World) -> None:
    """Upload URLs are ours on every blob store (the bytes pass through the server to be hashed)."""
    url = world.upload_url()
    query = dict(parse_qsl(urlsplit(url).query))
    bent = [
        _retarget(url, UNKNOWN_ID),
        _with_query(url, sig=_forged(query["sig"])),
        _with_query(url, exp=str(int(query["exp"]) + 3600)),
        _with_query(url, org="o-foreign"),
        urlunsplit(urlsplit(url)._replace(query="")),
        world.expired_upload,
    ]
    for candidate in bent:
        answer = httpx.put(candidate, content=b"0123456789")
        assert answer.status_code in (403, 404), (candidate, answer.status_code)
    if BLOBS == "s3":
        return  # a download URL is the object store's there, not one of ours to bend into an upload
    # a download signature does not open an upload, nor the other way round
    download = world.signed_url("feature.bin")
    as_upload = urlunsplit(
        urlsplit(download)._replace(path=urlsplit(download).path.replace("content", "uploads"))
    )
    assert httpx.put(as_upload, content=b"0123456789").status_code in (403, 404)


@pytest.mark.parametrize("authorization", BAD_GRAPHQL_CREDENTIALS, ids=lambda a: str(a)[:24])
def test_the_event_feed_needs_a_valid_token(world: World, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.get(f"{world.base}/api/events", headers=headers, timeout=10)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
    _no_leak(world, answer)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_device_uploads_need_that_devices_secret(world: World, method: str) -> None:
    url = f"{world.base}/api/devices/p1/d1/content"
    wrong = [None, *MALFORMED_AUTH, "Device", "Device wrong-secret-0123", "Device d2-secret-0123",
             f"Automation {GQL_TOKEN}", "Device " + "x" * 5000]  # fmt: skip
    for authorization in wrong:
        headers = {"Authorization": authorization} if authorization else {}
        answer = httpx.request(method, url, params={"name": "m.bin"}, content=b"x", headers=headers)
        assert answer.status_code == 401, (authorization, answer.text)
    # an unknown device answers exactly like a wrong secret
    unknown = httpx.request(method, f"{world.base}/api/devices/p1/d-nope/content", params={"name": "m.bin"},
                            content=b"x", headers={"Authorization": "Device d1-secret-0123"})  # fmt: skip
    assert unknown.status_code == 401


def test_resumable_uploads_need_a_write_credential_of_their_owner(world: World) -> None:
    """Creation refuses missing, forged, expired, revoked and read-only credentials; an upload
    refuses another organization's token, another device, and a bent signed URL; nothing is stored."""
    tus = {"Tus-Resumable": "1.0.0"}
    meta = "filename " + base64.b64encode(b"m.bin").decode() + ",asset " + base64.b64encode(b"a2").decode()
    create = {**tus, "Upload-Length": "3", "Upload-Metadata": meta}
    for authorization in BAD_GRAPHQL_CREDENTIALS:
        headers = {**create, **({"Authorization": authorization} if authorization else {})}
        refused = httpx.post(f"{world.base}/files/", headers=headers)
        assert refused.status_code == 401, (authorization, refused.text)
        _no_leak(world, refused)
    read_only = httpx.post(
        f"{world.base}/files/", headers={**create, "Authorization": f"Automation {RO_TOKEN}"}
    )
    assert read_only.status_code == 403
    foreign = httpx.post(
        f"{world.base}/files/", headers={**create, "Authorization": f"Automation {FOREIGN_TOKEN}"}
    )
    assert foreign.status_code == 404  # o-foreign has no a2: like an unknown asset
    url = httpx.post(
        f"{world.base}/files/", headers={**create, "Authorization": f"Automation {GQL_TOKEN}"}
    ).headers["location"]
    patch = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    for authorization, status in ((f"Automation {FOREIGN_TOKEN}", 404), (f"Automation {RO_TOKEN}", 403),
                                  ("Device d1-secret-0123", 401), (None, 401)):  # fmt: skip
        headers = {**patch, **({"Authorization": authorization} if authorization else {})}
        assert httpx.patch(url, content=b"abc", headers=headers).status_code == status, authorization
        assert httpx.delete(url, headers=headers).status_code == status, authorization
    own = {"Authorization": f"Automation {GQL_TOKEN}", **tus}
    assert httpx.head(url, headers=own).headers["upload-offset"] == "0"
    # a device's upload is that device's alone
    device_meta = (
        "filename " + base64.b64encode(b"d.bin").decode() + ",device " + base64.b64encode(b"p1.d1").decode()
    )
    device_url = httpx.post(
        f"{world.base}/files/",
        headers={
            **tus,
            "Upload-Length": "3",
            "Upload-Metadata": device_meta,
            "Authorization": "Device d1-secret-0123",
        },
    ).headers["location"]
    for authorization in ("Device d2-secret-0123", f"Automation {GQL_TOKEN}", "Device wrong-0123"):
        answer = httpx.patch(device_url, content=b"abc", headers={**patch, "Authorization": authorization})
        assert answer.status_code in (401, 403), (authorization, answer.text)
    # a reservation's upload continues at its signed URL only, and the signature binds it
    reserved = world.gql(
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {
            "i": {
                "name": "r.bin",
                "associations": [{"type": "asset", "id": "a2"}],
                "length": 3,
                "sha256": "0" * 64,
            }
        },
        f"Automation {GQL_TOKEN}",
    ).json()["data"]["createContentUpload"]
    for bent in _bent(reserved["uploadUrl"]):
        assert httpx.post(bent, headers={**tus, "Upload-Length": "3"}).status_code in (403, 404), bent
    signed = httpx.post(reserved["uploadUrl"], headers={**tus, "Upload-Length": "3"}).headers["location"]
    for bent in _bent(signed):
        assert httpx.patch(bent, content=b"abc", headers=patch).status_code in (401, 403, 404), bent
    assert httpx.head(signed, headers=tus).headers["upload-offset"] == "0"


def _bent(url: str) -> list[str]:
    """The URL with its signature forged, its expiry moved, its organization or its target changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    path = parts.path.rsplit("/", 1)[0] + "/" + ("0" * 32 if parts.path.startswith("/files") else UNKNOWN_ID)
    return [
        urlunsplit(parts._replace(query=urlencode({**query, "sig": "A" * 43}))),
        urlunsplit(parts._replace(query=urlencode({**query, "exp": str(int(query["exp"]) + 3600)}))),
        urlunsplit(parts._replace(query=urlencode({**query, "org": "o-foreign"}))),
        urlunsplit(parts._replace(path=path)),
        urlunsplit(parts._replace(query="")),
    ]


def test_the_enos_device_api_needs_that_devices_session(world: World) -> None:
    """Every session route refuses no session, a forged one and a token of another face; with
    d1's own session, a file of d2's or of another organization answers like an unknown one."""
    login = {"signMethod": "sha256", "lifetime": 60_000}
    signed = device_login_sign("p1", "d1", 60_000, "d1-secret-0123")
    forged = httpx.post(f"{world.base}/auth/p1/d1", json={**login, "sign": "f" * 64})
    assert forged.status_code == 401 and forged.json()["code"] == 401
    _no_leak(world, forged)
    answer = httpx.post(f"{world.base}//auth/p1/d1", json={**login, "sign": signed})
    session = answer.json()["data"]["sessionId"]
    base = f"{world.base}/multipart/sys/p1/d1"
    for method, path in [("POST", "/thing/measurepoint/post"), ("GET", "/file/download"),
                         ("GET", "/file/download/url"), ("POST", "/file/delete")]:  # fmt: skip
        for query in ("", "?sessionId=forged-0123456789", f"?sessionId={GQL_TOKEN}"):
            refused = httpx.request(method, base + path + query, content=b"x")
            assert refused.status_code == 401 and refused.json()["code"] == 401, (path, query, refused.text)
            _no_leak(world, refused)
    names = uris(world.server)
    for name in ("devlog.csv", "feature.bin"):  # d1's own file is reachable; an asset's file is not d1's
        answer = httpx.get(f"{base}/file/download", params={"sessionId": session, "fileUri": names[name],
                                                            "category": "feature"})  # fmt: skip
        expected = 200 if name == "devlog.csv" else 404
        assert answer.status_code == expected, (name, answer.text)


def test_the_murano_device_api_needs_a_token_of_that_product(world: World) -> None:
    """No token, a forged one, and credentials of other faces are refused, and say nothing."""
    for url in (
        f"{world.base}/murano/p1/provision/download",
        f"{world.base}/murano/p1/provision/download?id=x",
    ):
        others = [f"token {GQL_TOKEN}", f"Automation {GQL_TOKEN}", "Device d1-secret-0123"]
        for headers in [{}, {"X-Exosite-CIK": "f" * 40}, *({"Authorization": other} for other in others)]:
            refused = httpx.get(url, headers=headers)
            assert refused.status_code == 401, (url, headers, refused.text)
            _no_leak(world, refused)
    # a device of o-enos that was never enabled cannot activate
    answer = httpx.post(f"{world.base}/murano/p1/provision/activate", content="id=d1",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert answer.status_code == 409


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/console",
        "/console/",
        "/console/static/console.css",
    ],
)
def test_public_routes_carry_no_organization_data(world: World, path: str) -> None:
    answer = httpx.get(f"{world.base}{path}", follow_redirects=False)
    assert answer.status_code in (200, 307, 308)
    _no_leak(world, answer)
    for secret in (GQL_TOKEN, RO_TOKEN, FOREIGN_TOKEN, *(secret for secret, _ in APPS.values()), "d1-secret"):
        assert secret not in answer.text
