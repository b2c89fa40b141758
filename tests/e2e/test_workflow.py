"""The six steps of the documented ExoSense workflow, with the queries and variables verbatim."""

from __future__ import annotations

import httpx

from tests.conftest import RW
from tests.helpers import Server, sha256

# Step 2, as written in the ExoSense document (commented-out fields included).
ASSET_QUERY = """query asset($assetId: ID!) {
        asset(id: $assetId) {
            id
            name
            meta
            description
            signals {
            #  id
            #  name
              channel {
                id
                #properties
              }
            }
        }
    }
"""

# Steps 4 and 5.
ASSET_CONTENTS_QUERY = """query assetContents($filters: ContentFilters, $pagination: Pagination, $id: [ID!], $devices: [AssetContentsDeviceInput]) {
                assetContents(filters: $filters, pagination: $pagination, id: $id, devices: $devices) {
                    assetContents {
                        id 
                        name 
                        associations { type id }
                        tags { name value } 
                        contentType 
                        createdBy { 
                            ... on Device { 
                                pid 
                                identity 
                            }
                            ... on User {
                                name 
                            }
                        } 
                        type
                        lastModified
                        length  
                    }
                    totalCount 
                }
            }
"""  # noqa: E501, W291 - verbatim from the document, trailing spaces included

# Step 6.
CONTENT_QUERY = """query ContentDownload($id: ID!) {
                    content(id: $id) {
                        id
                        url
                        name
                        lastModified
                    }
                }
"""

DEVICE_CONTENT_QUERY = """query DeviceAssetContent($input: DeviceAssetContentInput!) {
                    deviceAssetContent(input: $input) {
                        url
                    }
                }
"""


def user_content_variables(asset_id: str) -> dict[str, object]:
    return {
        "filters": {
            "contentTypes": [],
            "orderBy": "updated_at",
            "sort": "desc",
            "association": {"type": "asset", "id": asset_id},
        },
        "pagination": {"limit": 50, "offset": 0},
        "devices": None,
    }


def device_content_variables(asset_id: str, product_id: str, device_id: str) -> dict[str, object]:
    """Step 5's variables: step 4's with ``id: None`` and the device."""
    return {
        **user_content_variables(asset_id),
        "id": None,
        "devices": [{"product_id": product_id, "device_id": device_id}],
    }


def test_documented_workflow_end_to_end(server: Server) -> None:
    # Step 1 and 2: the asset and its signals' channels.
    asset = server.data(ASSET_QUERY, {"assetId": "a-pump-7"}, token=RW)["asset"]
    assert asset["id"] == "a-pump-7"
    assert asset["name"] == "Pump 7"
    assert asset["description"] == "Main feed pump"
    assert asset["meta"] == {"site": "north", "floors": [1, 2]}
    channels = [signal["channel"]["id"] for signal in asset["signals"]]
    assert channels == ["p7k2q9.pump-007.data_in.temp", "p7k2q9.pump-008.data_in.flow"]

    # Step 3: consolidate the devices from the channel ids.
    devices = sorted({tuple(channel.split(".")[:2]) for channel in channels})
    assert devices == [("p7k2q9", "pump-007"), ("p7k2q9", "pump-008")]

    # Step 4: content created by users or the API.
    listing = server.data(ASSET_CONTENTS_QUERY, user_content_variables("a-pump-7"))["assetContents"]
    by_name = {item["name"]: item for item in listing["assetContents"]}
    assert listing["totalCount"] == 3
    assert set(by_name) == {"manual.pdf", "photo.png", "data 1.bin"}
    manual = by_name["manual.pdf"]
    assert manual["contentType"] == "application/pdf"
    assert manual["createdBy"] == {"name": "alice"}
    assert manual["tags"] == [{"name": "kind", "value": "manual"}]
    assert manual["associations"] == [{"type": "asset", "id": "a-pump-7"}]
    assert manual["type"] == "file"
    assert manual["length"] == len(server.files["files/manual.pdf"])
    stamps = [item["lastModified"] for item in listing["assetContents"]]
    assert stamps == sorted(stamps, reverse=True)

    # Step 5: content uploaded by each device.
    device_items: dict[tuple[str, str], list[dict[str, object]]] = {}
    for product_id, device_id in devices:
        variables = device_content_variables("a-pump-7", product_id, device_id)
        result = server.data(ASSET_CONTENTS_QUERY, variables)["assetContents"]
        device_items[(product_id, device_id)] = result["assetContents"]
        assert result["totalCount"] == len(result["assetContents"]) == 1
        assert result["assetContents"][0]["createdBy"] == {"pid": product_id, "identity": device_id}
    assert device_items[("p7k2q9", "pump-007")][0]["name"] == "log-a.csv"
    assert device_items[("p7k2q9", "pump-008")][0]["name"] == "log-b.csv"

    # Step 6 and 7: URLs, then the bytes, with no Authorization header.
    expected = {
        "manual.pdf": server.files["files/manual.pdf"],
        "photo.png": server.files["files/photo.png"],
        "data 1.bin": server.files["files/data.bin"],
    }
    for item in listing["assetContents"]:
        content = server.data(CONTENT_QUERY, {"id": item["id"]})["content"]
        assert content["id"] == item["id"]
        assert content["name"] == item["name"]
        assert content["lastModified"] == item["lastModified"]
        body = httpx.get(content["url"], timeout=30)
        assert body.status_code == 200
        assert sha256(body.content) == sha256(expected[item["name"]])
    for (product_id, device_id), items in device_items.items():
        variables = {"input": {"id": items[0]["id"], "product_id": product_id, "device_id": device_id}}
        url = server.data(DEVICE_CONTENT_QUERY, variables)["deviceAssetContent"]["url"]
        body = httpx.get(url, timeout=30)
        name = "files/log-a.csv" if device_id == "pump-007" else "files/log-b.csv"
        assert body.content == server.files[name]


def test_bearer_scheme_is_accepted_too(server: Server) -> None:
    asset = server.data(ASSET_QUERY, {"assetId": "a-pump-7"}, scheme="Bearer")["asset"]
    assert asset["id"] == "a-pump-7"


def test_device_that_does_not_feed_the_asset_lists_nothing(server: Server) -> None:
    variables = device_content_variables("a-pump-7", "p7k2q9", "pump-009")
    result = server.data(ASSET_CONTENTS_QUERY, variables)["assetContents"]
    assert result == {"assetContents": [], "totalCount": 0}


def test_device_content_is_only_served_for_its_own_device(server: Server) -> None:
    variables = device_content_variables("a-pump-7", "p7k2q9", "pump-007")
    item = server.data(ASSET_CONTENTS_QUERY, variables)["assetContents"]["assetContents"][0]
    wrong = {"input": {"id": item["id"], "product_id": "p7k2q9", "device_id": "pump-008"}}
    error = server.error(DEVICE_CONTENT_QUERY, wrong)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["deviceAssetContent"]
