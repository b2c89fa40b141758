"""GraphQL bounds (issue: a read-only token must not exhaust a worker): text and token limits
before parsing, depth and cost after, a byte-bounded document cache, and pathological documents
checked off the event loop (a concurrent health probe keeps being answered)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse

from assetfiles.server.graphql.limits import (
    MAX_COST,
    MAX_DEPTH,
    MAX_QUERY_CHARS,
    DocumentCache,
    query_cost,
)
from tests.conftest import RO
from tests.helpers import Server

LISTING = """query($p: Pagination) { assetContents(filters: {association: {type: "asset", id: "a-pump-7"}},
  pagination: $p) { assetContents { %s } totalCount } }"""
DOCUMENTED_FIELDS = (
    "id name associations { type id } tags { name value } contentType "
    "createdBy { ... on Device { pid identity } ... on User { name } } type lastModified length "
    "sha256 md5 createdAt enos { fileUri category }"
)


def post(server: Server, query: str, variables: dict[str, object] | None = None) -> httpx.Response:
    return server.gql(query, variables, token=RO)


def message(answer: httpx.Response) -> str:
    text: str = answer.json()["errors"][0]["message"]
    return text


def test_a_query_longer_than_the_limit_is_refused_before_parsing(server: Server) -> None:
    query = "{ currentToken { name } }" + " " * MAX_QUERY_CHARS
    answer = post(server, query)
    assert answer.status_code == 400
    assert message(answer).startswith(f"query: at most {MAX_QUERY_CHARS} characters")
    assert answer.json()["errors"][0]["extensions"]["field"] == "query"


def test_too_many_tokens_are_refused(server: Server) -> None:
    query = "{ currentToken { " + "name " * 16_000 + "} }"
    assert len(query) < MAX_QUERY_CHARS
    answer = post(server, query)
    assert answer.status_code == 400
    assert "tokens" in message(answer).lower()


def test_depth_is_bounded_and_introspection_still_answers(server: Server) -> None:
    standard = post(server, get_introspection_query())
    assert standard.status_code == 200 and "errors" not in standard.json()
    nested = "ofType { " * (MAX_DEPTH) + "name" + " }" * MAX_DEPTH
    answer = post(server, "{ __schema { types { fields { type { " + nested + " } } } } }")
    assert answer.status_code == 400
    assert f"at most {MAX_DEPTH} fields deep" in message(answer)


def test_nested_aliases_count_once_per_item_of_the_page(server: Server) -> None:
    aliases = " ".join(f"u{i}: url" for i in range(100))
    answer = post(server, LISTING % aliases, {"p": {"limit": 1000}})
    assert answer.status_code == 400
    assert f"costs more than {MAX_COST}" in message(answer)
    # The same document on a page of 50 is cheap enough to answer.
    small = post(server, LISTING % aliases, {"p": {"limit": 50}})
    assert small.status_code == 200 and "errors" not in small.json(), small.text


def test_what_clients_send_stays_inside_the_cost_limit(server: Server) -> None:
    documented = post(server, LISTING % DOCUMENTED_FIELDS, {"p": {"limit": 1000}})
    assert documented.status_code == 200 and "errors" not in documented.json(), documented.text
    # URL resolution batched with aliases (the sync client's 50, and the root-field limit's 200).
    batch = " ".join(
        f'c{i}: content(id: "00000000-0000-0000-0000-{i:012d}") {{ id url name lastModified }}'
        for i in range(200)
    )
    answer = post(server, "{ " + batch + " }")
    assert answer.status_code == 200, answer.text


def test_cost_counts_pages_lists_and_fragments() -> None:
    document = parse(
        "query($p: Pagination) { assetContents(pagination: $p) { assetContents { ...F tags { name } } } }"
        " fragment F on Content { id name }"
    )
    # assetContents 1, inner list 1x50... each field x page size; tags x5 (a small list)
    assert query_cost(document, None, {"p": {"limit": 10}}) == 1 + 10 * (1 + 2 + 1 + 5)
    assert query_cost(document, None, {}) == 1 + 50 * (1 + 2 + 1 + 5)
    assert query_cost(document, None, {"p": {"limit": 10**9}}) == 1 + 1000 * (1 + 2 + 1 + 5)


def test_fragment_bombs_are_refused_without_expanding_them(server: Server) -> None:
    fragments = "\n".join(f"fragment F{i} on Asset {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    query = 'query { asset(id: "a-pump-7") { ...F0 } }\n' + fragments + "\nfragment F40 on Asset { id }"
    answer = post(server, query)  # expanded, it would never come back (the client times out)
    assert answer.status_code == 400


def test_deeply_nested_json_bodies_are_a_400(server: Server) -> None:
    body = "[" * 200_000 + "]" * 200_000
    answer = server.post(
        server.graphql_url,
        content=body,
        headers={"Authorization": f"Automation {RO}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert message(answer) in (
        "the request body is nested too deeply",
        "the request body must be a JSON object",
    )


def test_the_document_cache_is_bounded_by_the_text_it_holds() -> None:
    cache = DocumentCache(max_chars=10_000, max_entry_chars=1_000)
    document = parse("{ currentToken { name } }")
    for index in range(1_000):
        cache.put(f"{{ currentToken {{ name }} }} # {index:0900d}", document)
    assert cache.chars <= 10_000 and len(cache) == 10
    cache.put("{ x }" + " " * 2_000, document)
    assert cache.get("{ x }" + " " * 2_000) is None  # large documents are never held
    newest = f"{{ currentToken {{ name }} }} # {999:0900d}"
    assert cache.get(newest) is document


def test_unseen_documents_are_checked_on_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing and validating a document not seen before never runs on the event loop's thread."""
    from assetfiles.server.graphql import endpoint

    threads: list[bool] = []
    real = endpoint._parse_and_validate

    def recording(query: str) -> Any:
        threads.append(threading.current_thread() is threading.main_thread())
        return real(query)

    monkeypatch.setattr(endpoint, "_parse_and_validate", recording)
    text = "{ currentToken { name } } # unseen " + os.urandom(8).hex()
    asyncio.run(endpoint._document(text))
    asyncio.run(endpoint._document(text))  # the second time from the cache
    assert threads == [False]
