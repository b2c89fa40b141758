"""assetContents and assets: pagination, totalCount, every filter and sort, and bad arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.conftest import EXTENSIONS, LIST_ITEMS
from tests.helpers import Server

LIST = """query L(
  $filters: ContentFilters, $pagination: Pagination, $id: [ID!], $devices: [AssetContentsDeviceInput]
) {
  assetContents(filters: $filters, pagination: $pagination, id: $id, devices: $devices) {
    assetContents { id name contentType length lastModified createdAt tags { name value } }
    totalCount
  }
}"""

ASSETS = """query A($filters: AssetFilters, $ids: [ID], $pagination: Pagination) {
  assets(filters: $filters, ids: $ids, pagination: $pagination) { id name }
  assetsCount(filters: $filters, ids: $ids)
}"""


def listing(server: Server, pagination: dict[str, Any] | None = None, **filters: Any) -> dict[str, Any]:
    filters = {"association": {"type": "asset", "id": "a-list"}, **filters}
    result: dict[str, Any] = server.data(LIST, {"filters": filters, "pagination": pagination})[
        "assetContents"
    ]
    return result


def names(result: dict[str, Any]) -> list[str]:
    return [item["name"] for item in result["assetContents"]]


def item_name(index: int) -> str:
    return f"item-{index:02d}{EXTENSIONS[index % 3]}"


def test_default_page_is_newest_first_with_total(server: Server) -> None:
    result = listing(server)
    assert result["totalCount"] == LIST_ITEMS
    assert names(result) == [item_name(i) for i in reversed(range(LIST_ITEMS))]


def test_pages_cover_everything_once(server: Server) -> None:
    seen: list[str] = []
    for offset in range(0, LIST_ITEMS, 7):
        page = listing(server, {"limit": 7, "offset": offset})
        assert page["totalCount"] == LIST_ITEMS
        seen += names(page)
    assert sorted(seen) == sorted(item_name(i) for i in range(LIST_ITEMS))
    assert len(seen) == LIST_ITEMS


def test_offset_past_the_end_is_empty_with_total(server: Server) -> None:
    page = listing(server, {"limit": 10, "offset": 1000})
    assert page == {"assetContents": [], "totalCount": LIST_ITEMS}


def test_limit_defaults_to_50_and_accepts_1000(server: Server) -> None:
    assert len(listing(server, {"offset": 0})["assetContents"]) == LIST_ITEMS
    assert len(listing(server, {"limit": 1000})["assetContents"]) == LIST_ITEMS
    assert len(listing(server, {"limit": 1})["assetContents"]) == 1


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        ("updated_at", lambda i: i),
        ("created_at", lambda i: i),
        ("name", item_name),
        ("length", lambda i: i * 100 + 1),
    ],
)
@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_every_order_and_direction(server: Server, order_by: str, key: Any, sort: str) -> None:
    result = listing(server, orderBy=order_by, sort=sort)
    expected = [item_name(i) for i in sorted(range(LIST_ITEMS), key=key, reverse=sort == "desc")]
    assert names(result) == expected


def test_content_types_filter(server: Server) -> None:
    result = listing(server, contentTypes=["text/csv"])
    assert names(result) == [item_name(i) for i in reversed(range(0, LIST_ITEMS, 3))]
    assert result["totalCount"] == len(range(0, LIST_ITEMS, 3))
    both = listing(server, contentTypes=["text/csv", "application/json"])
    assert both["totalCount"] == len(range(0, LIST_ITEMS, 3)) + len(range(2, LIST_ITEMS, 3))
    assert listing(server, contentTypes=[])["totalCount"] == LIST_ITEMS
    assert listing(server, contentTypes=["image/none"])["totalCount"] == 0


def test_tag_filters(server: Server) -> None:
    even = listing(server, tags=[{"name": "parity", "value": "even"}])
    assert even["totalCount"] == len(range(0, LIST_ITEMS, 2))
    one = listing(server, tags=[{"name": "parity", "value": "even"}, {"name": "index", "value": "4"}])
    assert names(one) == [item_name(4)]
    any_value = listing(server, tags=[{"name": "index", "value": None}])
    assert any_value["totalCount"] == LIST_ITEMS
    assert listing(server, tags=[{"name": "missing", "value": None}])["totalCount"] == 0


def test_name_glob_filter(server: Server) -> None:
    assert names(listing(server, name="item-1?.json", sort="asc")) == [
        "item-11.json",
        "item-14.json",
        "item-17.json",
    ]
    assert listing(server, name="ITEM-*")["totalCount"] == LIST_ITEMS
    assert listing(server, name="item_0*")["totalCount"] == 0  # '_' is literal, not a wildcard


def test_modified_since_filter(server: Server) -> None:
    everything = listing(server, sort="asc")["assetContents"]
    pivot = everything[10]["lastModified"]
    later = listing(server, modifiedSince=pivot)
    assert all(item["lastModified"] >= pivot for item in later["assetContents"])
    assert 0 < later["totalCount"] <= LIST_ITEMS - 10
    assert listing(server, modifiedSince="2999-01-01T00:00:00Z")["totalCount"] == 0


def test_id_argument_restricts_to_those_ids(server: Server) -> None:
    every = listing(server)["assetContents"]
    chosen = [every[3]["id"], every[5]["id"]]
    result = server.data(
        LIST, {"filters": {"association": {"type": "asset", "id": "a-list"}}, "id": chosen, "devices": None}
    )["assetContents"]
    assert sorted(item["id"] for item in result["assetContents"]) == sorted(chosen)
    assert result["totalCount"] == 2


def test_device_association_lists_device_content(server: Server) -> None:
    result = server.data(LIST, {"filters": {"association": {"type": "device", "id": "p7k2q9.pump-007"}}})
    assert [item["name"] for item in result["assetContents"]["assetContents"]] == ["log-a.csv"]


def test_several_devices_at_once(server: Server) -> None:
    variables = {
        "filters": {"association": {"type": "asset", "id": "a-pump-7"}, "orderBy": "name", "sort": "asc"},
        "devices": [
            {"product_id": "p7k2q9", "device_id": "pump-007"},
            {"product_id": "p7k2q9", "device_id": "pump-008"},
            {"product_id": "p7k2q9", "device_id": "pump-009"},
        ],
    }
    result = server.data(LIST, variables)["assetContents"]
    assert [item["name"] for item in result["assetContents"]] == ["log-a.csv", "log-b.csv"]
    assert result["totalCount"] == 2


def test_without_association_lists_the_whole_organization(server: Server) -> None:
    total = server.data(LIST, {"pagination": {"limit": 1}})["assetContents"]["totalCount"]
    assert total >= LIST_ITEMS + 6


def test_assets_listing(server: Server) -> None:
    result = server.data(ASSETS, {})
    assert [a["id"] for a in result["assets"]] == ["a-empty", "a-list", "a-other", "a-pump-7"]
    assert result["assetsCount"] == 4
    page = server.data(ASSETS, {"pagination": {"limit": 2, "offset": 1}})
    assert [a["id"] for a in page["assets"]] == ["a-list", "a-other"]
    assert page["assetsCount"] == 4
    text = server.data(ASSETS, {"filters": {"text": "PUMP"}})  # "Other pump" and "a-pump-7"
    assert [a["id"] for a in text["assets"]] == ["a-other", "a-pump-7"] and text["assetsCount"] == 2
    by_id = server.data(ASSETS, {"ids": ["a-other", "a-list", "nope"]})
    assert [a["id"] for a in by_id["assets"]] == ["a-list", "a-other"] and by_id["assetsCount"] == 2
    # LIKE's own wildcards are literal text
    assert server.data(ASSETS, {"filters": {"text": "%"}})["assetsCount"] == 0


def test_assets_as_public_exosense_clients_query_it(server: Server) -> None:
    """What ExoSense clients send: ids and pagination, a plain list of assets with their signals."""
    query = """query getAsset($id: ID!) {
      assets(ids: [$id], pagination: {limit: 1, offset: 0}) {
        id name signals { id name channel { id properties } }
      }
    }"""
    assets = server.data(query, {"id": "a-pump-7"})["assets"]
    assert len(assets) == 1 and assets[0]["id"] == "a-pump-7"
    assert assets[0]["signals"][0]["channel"]["id"].count(".") == 3


@pytest.mark.parametrize(
    ("variables", "field"),
    [({"filters": {"text": "x" * 257}}, "filters.text"), ({"ids": ["a"] * 1001}, "ids")],
)
def test_assets_bad_arguments(server: Server, variables: dict[str, Any], field: str) -> None:
    assert server.error(ASSETS, variables)["extensions"]["field"] == field


# -- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pagination", "field"),
    [
        ({"limit": 0}, "pagination.limit"),
        ({"limit": -5}, "pagination.limit"),
        ({"limit": 1001}, "pagination.limit"),
        ({"offset": -1}, "pagination.offset"),
    ],
)
def test_out_of_range_pagination(server: Server, pagination: dict[str, int], field: str) -> None:
    error = server.error(
        LIST, {"filters": {"association": {"type": "asset", "id": "a-list"}}, "pagination": pagination}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


def test_assets_pagination_is_checked_too(server: Server) -> None:
    error = server.error(ASSETS, {"pagination": {"limit": 5000}})
    assert error["extensions"]["field"] == "pagination.limit"


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"pagination": {"limit": 2**40}}, "pagination"),
        ({"pagination": {"limit": "ten"}}, "pagination"),
        ({"pagination": {"offset": 1.5}}, "offset"),
        ({"filters": {"orderBy": "size"}}, "orderBy"),
        ({"filters": {"sort": "DOWN"}}, "sort"),
        ({"filters": {"contentTypes": [7]}}, "contentTypes"),
        ({"filters": {"association": {"type": "asset"}}}, "id"),
        ({"filters": {"modifiedSince": "yesterday"}}, "modifiedSince"),
        ({"filters": {"unknown": 1}}, "unknown"),
        ({"devices": [{"product_id": "p7k2q9"}]}, "device_id"),
        ({"id": [None]}, "id"),
    ],
)
def test_wrongly_typed_variables_are_request_errors(
    server: Server, variables: dict[str, Any], fragment: str
) -> None:
    error = server.error(LIST, variables)
    assert error["_status"] == 400
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"filters": {"association": {"type": "building", "id": "x"}}}, "filters.association.type"),
        ({"filters": {"association": {"type": "asset", "id": ""}}}, "filters.association.id"),
        ({"filters": {"association": {"type": "device", "id": "no-dot"}}}, "filters.association.id"),
        ({"filters": {"name": ""}}, "filters.name"),
        ({"filters": {"tags": [{"name": "", "value": "x"}]}}, "filters.tags[0].name"),
        (
            {"filters": {"association": {"type": "asset", "id": "a-pump-7"}}, "devices": [None]},
            "devices[0]",
        ),
        (
            {
                "filters": {"association": {"type": "asset", "id": "a-pump-7"}},
                "devices": [{"product_id": "p7k2q9", "device_id": "pump.007"}],
            },
            "devices[0].device_id",
        ),
        ({"devices": [{"product_id": "p7k2q9", "device_id": "pump-007"}]}, "filters.association"),
    ],
)
def test_invalid_filter_values_name_the_field(server: Server, variables: dict[str, Any], field: str) -> None:
    error = server.error(LIST, variables)
    assert error["_status"] == 200
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


def test_unknown_asset_in_association_is_not_found(server: Server) -> None:
    error = server.error(LIST, {"filters": {"association": {"type": "asset", "id": "a-nope"}}})
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "filters.association.id"}
    assert "a-nope" in error["message"]


def test_aliases_of_one_content_keep_their_own_url_lifetimes(server: Server) -> None:
    content_id = listing(server, {"limit": 1})["assetContents"][0]["id"]
    query = """query($id: ID!) {
      short: content(id: $id, expiresIn: 60) { url expiresAt }
      long: content(id: $id, expiresIn: 3600) { url expiresAt }
      default: content(id: $id) { expiresAt }
    }"""
    data = server.data(query, {"id": content_id})
    stamps = {
        alias: datetime.fromisoformat(data[alias]["expiresAt"].replace("Z", "+00:00")) for alias in data
    }
    assert (stamps["long"] - stamps["short"]).total_seconds() == pytest.approx(3540, abs=2)
    assert (stamps["default"] - stamps["short"]).total_seconds() == pytest.approx(540, abs=2)
    assert data["short"]["url"] != data["long"]["url"]
