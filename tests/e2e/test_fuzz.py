"""Schemathesis against the running server: every operation of the EnOS face's OpenAPI document
and every query and mutation of the GraphQL schema, with generated valid and invalid input,
under a read-write credential. No answer may be a 5xx, and no GraphQL error may be INTERNAL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.test_enos import GQL_TOKEN, access_token, enos_document, enos_files
from tests.helpers import Server, seed_and_start

pytestmark = pytest.mark.slow

EXAMPLES = 80
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = seed_and_start(tmp_path_factory.mktemp("fuzz"), enos_document(), enos_files())
    yield server
    server.stop()


def _fuzz(schema: Any, base_url: str, headers: dict[str, str], check: Any) -> dict[str, int]:
    """Run every operation of ``schema``; returns examples tried per operation."""
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        tried[operation.label] = _fuzz_operation(operation, base_url, headers, check)
    return tried


def _fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], check: Any) -> int:
    label, tried = operation.label, 0

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        nonlocal tried
        tried += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:500]}"
        check(label, response)

    run()
    return tried


def test_enos_openapi_operations_never_fail_on_the_server(fuzzed: Server) -> None:
    def envelope(label: str, response: Any) -> None:
        try:
            body = response.json()
        except ValueError:
            return  # a download's bytes
        code = body.get("code", body.get("status")) if isinstance(body, dict) else None
        assert not (isinstance(code, int) and 500 <= code < 600), f"{label}: {response.text[:500]}"

    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json")
    tried = _fuzz(schema, fuzzed.base_url, {"apim-accesstoken": access_token(fuzzed)}, envelope)
    assert len(tried) >= 4 and all(count > 0 for count in tried.values()), tried
    print(f"\nOpenAPI: {sum(tried.values())} examples over {len(tried)} operations")


def test_graphql_operations_never_answer_internal(fuzzed: Server) -> None:
    def no_internal(label: str, response: Any) -> None:
        body = response.json()
        codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or []]
        assert "INTERNAL" not in codes, f"{label}: {json.dumps(body)[:500]}"

    headers = {"Authorization": f"Automation {GQL_TOKEN}"}
    schema = schemathesis.graphql.from_url(f"{fuzzed.base_url}/api/graphql", headers=headers)
    tried = _fuzz(schema, fuzzed.base_url, headers, no_internal)
    assert len(tried) >= 10 and all(count > 0 for count in tried.values()), tried
    print(f"\nGraphQL: {sum(tried.values())} examples over {len(tried)} operations")
