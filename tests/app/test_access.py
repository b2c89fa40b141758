"""Authentication, GraphQL-over-HTTP framing, and isolation between organizations."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.backends import catalog_text
from tests.conftest import OTHER
from tests.helpers import Server

ASSET = "query($id: ID!) { asset(id: $id) { id name } }"
CONTENT = "query($id: ID!) { content(id: $id) { id url } }"
DEVICE_CONTENT = "query($i: DeviceAssetContentInput!) { deviceAssetContent(input: $i) { url } }"
LIST = """query($f: ContentFilters, $d: [AssetContentsDeviceInput]) {
  assetContents(filters: $f, devices: $d) { assetContents { id name } totalCount }
}"""


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing"),
        ({"Authorization": "Automation"}, "must be"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "must be"),
        ({"Authorization": "Automation not-a-token"}, "not valid"),
        ({"Authorization": "Bearer tok-acme-rw-012345678"}, "not valid"),
    ],
)
def test_missing_or_bad_token_is_401(server: Server, headers: dict[str, str], fragment: str) -> None:
    response = server.post(server.graphql_url, json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert fragment in error["message"]
    assert "Automation" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"variables": {}}', "query"),
        (b'{"query": ""}', "query"),
        (b'{"query": "{ __typename }", "variables": [1]}', "variables"),
        (b'{"query": "{ __typename }", "operationName": 5}', "operationName"),
        (b'{"query": "{ asset(id: "}', "Syntax Error"),
        (b'{"query": "{ nothing }"}', "nothing"),
        (b'{"query": "query A { __typename } query B { __typename }", "operationName": "C"}', "C"),
    ],
)
def test_malformed_requests_are_400(server: Server, body: bytes, fragment: str) -> None:
    response = server.post(
        server.graphql_url,
        content=body,
        headers={"Authorization": "Automation tok-acme-rw-0123456789", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fragment in error["message"]


def test_get_is_refused_with_a_hint(server: Server) -> None:
    response = server.get(server.graphql_url)
    assert response.status_code == 405
    assert "POST" in response.json()["errors"][0]["message"]


def test_introspection_is_on(server: Server) -> None:
    data = server.data("{ __schema { types { name } } }")
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {
        "ContentFilters",
        "Pagination",
        "AssetContentsDeviceInput",
        "DeviceAssetContentInput",
        "Long",
    } <= names


def test_unknown_ids_are_not_found_with_null_data(server: Server) -> None:
    response = server.gql(ASSET, {"id": "a-nope"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"asset": None}
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "id"}
    assert body["errors"][0]["path"] == ["asset"]


def _acme_ids(server: Server) -> dict[str, str]:
    items = server.data(LIST, {"f": {"association": {"type": "asset", "id": "a-pump-7"}}})
    device = server.data(
        LIST,
        {
            "f": {"association": {"type": "asset", "id": "a-pump-7"}},
            "d": [{"product_id": "p7k2q9", "device_id": "pump-007"}],
        },
    )
    return {
        "user": items["assetContents"]["assetContents"][0]["id"],
        "device": device["assetContents"]["assetContents"][0]["id"],
    }


def _shape(error: dict[str, object]) -> tuple[object, object]:
    """What a caller can observe of an error, with the id itself taken out."""
    extensions = error["extensions"]
    message = str(error["message"])
    return extensions, message.split("'")[0] + message.split("'")[-1]


def test_foreign_objects_look_exactly_like_unknown_ones(server: Server) -> None:
    ids = _acme_ids(server)
    foreign = server.error(ASSET, {"id": "a-pump-7"}, token=OTHER)
    unknown = server.error(ASSET, {"id": "a-unknown"}, token=OTHER)
    assert _shape(foreign) == _shape(unknown)
    assert foreign["extensions"]["code"] == "NOT_FOUND"

    foreign = server.error(CONTENT, {"id": ids["user"]}, token=OTHER)
    unknown = server.error(CONTENT, {"id": "00000000-0000-0000-0000-000000000000"}, token=OTHER)
    assert _shape(foreign) == _shape(unknown)

    wrong = {"i": {"id": ids["device"], "product_id": "p7k2q9", "device_id": "pump-007"}}
    unknown_input = {"i": {"id": "nope", "product_id": "p7k2q9", "device_id": "pump-007"}}
    assert _shape(server.error(DEVICE_CONTENT, wrong, token=OTHER)) == _shape(
        server.error(DEVICE_CONTENT, unknown_input, token=OTHER)
    )

    listing = server.error(LIST, {"f": {"association": {"type": "asset", "id": "a-pump-7"}}}, token=OTHER)
    unknown_listing = server.error(
        LIST, {"f": {"association": {"type": "asset", "id": "a-zzz"}}}, token=OTHER
    )
    assert _shape(listing) == _shape(unknown_listing)


def test_foreign_device_association_lists_nothing(server: Server) -> None:
    # o-other has a device with the same ids; each organization sees only its own device's files.
    mine = server.data(LIST, {"f": {"association": {"type": "device", "id": "p7k2q9.pump-007"}}}, token=OTHER)
    assert [item["name"] for item in mine["assetContents"]["assetContents"]] == ["other-log.csv"]


def test_other_organization_cannot_mutate_foreign_content(server: Server) -> None:
    ids = _acme_ids(server)
    for mutation, variables in [
        ("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": ids["user"]}),
        (
            'mutation($id: ID!) { setContentTags(id: $id, tags: [{name: "x", value: "y"}]) { id } }',
            {"id": ids["user"]},
        ),
    ]:
        assert server.error(mutation, variables, token=OTHER)["extensions"]["code"] == "NOT_FOUND"
    assert server.data(CONTENT, {"id": ids["user"]})["content"]["id"] == ids["user"]


def test_organization_listing_shows_only_own_content(server: Server) -> None:
    other = server.data(LIST, {}, token=OTHER)["assetContents"]
    assert sorted(item["name"] for item in other["assetContents"]) == ["b.txt", "other-log.csv"]
    assets = server.data("{ assets { id } assetsCount }", token=OTHER)
    assert assets == {"assets": [{"id": "b-asset"}], "assetsCount": 1}


@pytest.mark.parametrize(
    ("query", "variables", "status", "code", "fragment"),
    [
        (ASSET, {"id": None}, 400, "BAD_USER_INPUT", "$id"),
        (ASSET, {}, 400, "BAD_USER_INPUT", "$id"),
        (ASSET, {"id": ["a"]}, 400, "BAD_USER_INPUT", "ID"),
        (ASSET, {"id": ""}, 200, "BAD_USER_INPUT", "id"),
        (CONTENT, {"id": ""}, 200, "BAD_USER_INPUT", "id"),
        (CONTENT, {"id": True}, 400, "BAD_USER_INPUT", "ID"),
        (DEVICE_CONTENT, {"i": {"id": "x", "product_id": "p7k2q9"}}, 400, "BAD_USER_INPUT", "device_id"),
        (
            DEVICE_CONTENT,
            {"i": {"id": "x", "product_id": "p.7", "device_id": "d"}},
            200,
            "BAD_USER_INPUT",
            "product_id",
        ),
        (
            DEVICE_CONTENT,
            {"i": {"id": "x", "product_id": "p", "device_id": "d" * 200}},
            200,
            "BAD_USER_INPUT",
            "device_id",
        ),
    ],
)
def test_bad_arguments_of_the_single_object_queries(
    server: Server, query: str, variables: dict[str, object], status: int, code: str, fragment: str
) -> None:
    error = server.error(query, variables)
    assert error["_status"] == status
    assert error["extensions"]["code"] == code
    assert fragment in error["message"]


def test_oversized_graphql_body_is_413(server: Server) -> None:
    headers = {"Authorization": "Automation tok-acme-rw-0123456789", "Content-Type": "application/json"}
    big = b'{"query": "{ __typename }", "padding": "' + b"x" * (1024 * 1024) + b'"}'
    response = server.post(server.graphql_url, content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked, cut off as it arrives
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    assert server.post(server.graphql_url, content=chunks(), headers=headers).status_code == 413


def test_root_field_limit_counts_aliases_and_fragments(server: Server) -> None:
    batch = " ".join(f'c{i}: asset(id: "a-pump-7") {{ id }}' for i in range(150))
    assert len(server.data("{ " + batch + " }")) == 150
    too_many = " ".join(f"t{i}: __typename" for i in range(201))
    error = server.error("{ " + too_many + " }")
    assert error["_status"] == 400
    assert "at most 200 root fields" in error["message"]
    via_fragment = "query { ...F } fragment F on Query { " + too_many + " }"
    assert "at most 200" in server.error(via_fragment)["message"]


def test_unknown_paths_and_methods_answer_json(server: Server) -> None:
    missing = server.get(f"{server.base_url}/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = server.delete(f"{server.base_url}/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in wrong.headers["allow"]


def test_no_secret_is_stored_in_clear(server: Server) -> None:
    stored = catalog_text(server.data_dir)
    assert "o-acme" in stored  # the dump did read the catalog
    for secret in ("tok-acme-rw-0123456789", "tok-acme-ro-0123456789", "dev-pump-007-secret", OTHER):
        assert secret not in stored


def test_token_hashes_are_keyed_with_the_server_key(server: Server) -> None:
    """A stolen catalog alone does not let anyone test guesses: no plain SHA-256 of a secret."""
    stored = catalog_text(server.data_dir)
    for secret in ("tok-acme-rw-0123456789", "tok-acme-ro-0123456789"):
        assert hashlib.sha256(secret.encode()).hexdigest() not in stored


def test_an_unkeyed_hash_from_before_is_accepted_once_and_upgraded(tmp_path: Path) -> None:

    from assetfiles.config import Settings
    from assetfiles.model import Permission
    from assetfiles.server.app import create_app, routes_of
    from assetfiles.service.secrets import legacy_token_hash, token_hash

    secret = "tok-from-an-older-version-0123"
    settings = Settings(data_dir=tmp_path, secret_key="k" * 32)

    async def scenario() -> None:
        app = create_app(settings)
        inner = routes_of(app)
        async with inner.router.lifespan_context(inner):
            catalog = inner.state.services.stores.principals
            await catalog.upsert_organization("o-old", "Old")
            await catalog.upsert_token("o-old", "old", legacy_token_hash(secret), [Permission.READ])
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answer = await client.post("/api/graphql", json={"query": "{ assetsCount }"},
                                           headers={"Authorization": f"Automation {secret}"})  # fmt: skip
                assert answer.status_code == 200, answer.text
            assert await catalog.find_token(legacy_token_hash(secret)) is None
            assert await catalog.find_token(token_hash(secret, settings.signing_key)) is not None

    asyncio.run(scenario())
