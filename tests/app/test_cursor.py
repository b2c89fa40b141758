"""Keyset pagination (an addition): ``pagination.cursor`` and ``nextCursor``, and the client using it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LIST_ITEMS
from tests.helpers import Server

LIST = """query L($filters: ContentFilters, $pagination: Pagination) {
  assetContents(filters: $filters, pagination: $pagination) {
    assetContents { id name } totalCount nextCursor
  }
}"""
ASSET = {"type": "asset", "id": "a-list"}


def page(server: Server, pagination: dict[str, Any], **filters: Any) -> dict[str, Any]:
    variables = {"filters": {"association": ASSET, **filters}, "pagination": pagination}
    result: dict[str, Any] = server.data(LIST, variables)["assetContents"]
    return result


@pytest.mark.parametrize("order_by", ["updated_at", "created_at", "name", "length"])
@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_a_cursor_walk_is_the_offset_order_without_loss_or_repeat(
    server: Server, order_by: str, sort: str
) -> None:
    expected = [
        item["id"] for item in page(server, {"limit": 1000}, orderBy=order_by, sort=sort)["assetContents"]
    ]
    assert len(expected) == LIST_ITEMS
    walked: list[str] = []
    cursor = None
    for _ in range(LIST_ITEMS):
        result = page(
            server, {"limit": 4, **({"cursor": cursor} if cursor else {})}, orderBy=order_by, sort=sort
        )
        assert result["totalCount"] == LIST_ITEMS  # the total counts every row, wherever the page starts
        walked += [item["id"] for item in result["assetContents"]]
        cursor = result["nextCursor"]
        if cursor is None:
            break
    assert walked == expected


def test_the_last_page_has_no_cursor_and_a_full_last_page_leads_to_an_empty_one(server: Server) -> None:
    assert page(server, {"limit": LIST_ITEMS + 1})["nextCursor"] is None
    full = page(server, {"limit": LIST_ITEMS})
    assert full["nextCursor"] is not None
    after = page(server, {"limit": 10, "cursor": full["nextCursor"]})
    assert after == {"assetContents": [], "totalCount": LIST_ITEMS, "nextCursor": None}


def test_filters_apply_along_the_walk(server: Server) -> None:
    first = page(server, {"limit": 3}, tags=[{"name": "parity", "value": "even"}])
    second = page(
        server, {"limit": 100, "cursor": first["nextCursor"]}, tags=[{"name": "parity", "value": "even"}]
    )
    assert first["totalCount"] == second["totalCount"] == (LIST_ITEMS + 1) // 2
    assert len(first["assetContents"]) + len(second["assetContents"]) == (LIST_ITEMS + 1) // 2


def forged(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("pagination", "filters", "fragment"),
    [
        ({"cursor": "not a cursor!"}, {}, "not a cursor this server issued"),
        ({"cursor": forged({"a": 1})}, {}, "not a cursor this server issued"),
        ({"cursor": forged(["updated_at", True, "x", 1])}, {}, "not a cursor this server issued"),
        ({"cursor": forged(["updated_at", True, 1, True])}, {}, "not a cursor this server issued"),
        ({"cursor": forged(["updated_at", True, 1, 2**31])}, {}, "not a cursor this server issued"),
        ({"cursor": forged(["updated_at", True, 2**63, 1])}, {}, "not a cursor this server issued"),
        ({"cursor": forged(["updated_at", True, 1, -1])}, {}, "not a cursor this server issued"),
        ({"cursor": "A" * 5000}, {}, "too long"),
        ({"cursor": forged(["name", True, "item", 1])}, {}, "another orderBy or sort"),
        ({"cursor": forged(["updated_at", False, 1, 1])}, {}, "another orderBy or sort"),
        ({"cursor": forged(["updated_at", True, 1, 1]), "offset": 5}, {}, "not both"),
    ],
)
def test_bad_cursors_name_the_field(
    server: Server, pagination: dict[str, Any], filters: dict[str, Any], fragment: str
) -> None:
    variables = {"filters": {"association": ASSET, **filters}, "pagination": pagination}
    error = server.error(LIST, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "pagination.cursor"}, error
    assert fragment in error["message"]


def test_assets_refuses_a_cursor(server: Server) -> None:
    error = server.error('query { assets(pagination: {cursor: "x"}) { id } }')
    assert error["extensions"]["field"] == "pagination.cursor"


def test_a_forged_cursor_never_crosses_organizations(server: Server) -> None:
    """A cursor is only a starting point inside the caller's own listing."""
    result = page(server, {"limit": 1000, "cursor": forged(["updated_at", True, 2**62, 2**31 - 1])})
    assert {item["name"] for item in result["assetContents"]} <= {
        item["name"] for item in page(server, {"limit": 1000})["assetContents"]
    }


@given(
    document=st.lists(
        st.one_of(
            st.integers(),
            st.text(max_size=20),
            st.booleans(),
            st.none(),
            st.sampled_from(["updated_at", "name", "length"]),
        ),
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_cursor_is_an_answer_or_a_named_refusal(server: Server, document: list[Any]) -> None:
    response = server.gql(
        LIST, {"filters": {"association": ASSET}, "pagination": {"cursor": forged(document)}}
    )
    body = response.json()
    for error in body.get("errors") or []:
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "pagination.cursor"}, error
