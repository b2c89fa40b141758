"""The EnOS face over real HTTP, driven the way EnOS's public samples do it with a plain client."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.backends import stored_blobs
from tests.helpers import Server, encryption, md5hex, run_cli, seed_and_start, start_server

GQL_TOKEN = "tok-enos-rw-0123456789"
APPS = {
    "ak-rw": ("as-rw-secret-0123", ["asset:read", "asset:write"]),
    "ak-ro": ("as-ro-secret-0123", ["asset:read"]),
    "ak-expiry": ("as-expiry-secret-0123", ["asset:read"]),
    "ak-refresh": ("as-refresh-secret-0123", ["asset:read"]),
    "ak-strict": ("as-strict-secret-0123", ["asset:read"]),
}
OTHER_APP = ("ak-other", "as-other-secret-0123")
MAX_FILE = 256 * 1024


def enos_files() -> dict[str, bytes]:
    rng = random.Random(11)
    return {
        "files/feature.bin": rng.randbytes(5000),
        "files/fw.bin": rng.randbytes(3000),
        "files/devlog.csv": b"t,v\n" + rng.randbytes(4000),
        "files/other.bin": rng.randbytes(100),
        "files/backup.csv~": b"an editor's backup: its extension is not one a URI may carry\n",
    }


def enos_document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-enos",
                "tokens": [{"name": "rw", "secret": GQL_TOKEN, "permissions": ["read", "write"]}],
                "applications": [
                    {"app_key": key, "app_secret": secret, "policies": policies}
                    for key, (secret, policies) in APPS.items()
                ],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": "d1-secret-0123"},
                                                      {"id": "d2", "secret": "d2-secret-0123"}]}],
                "assets": [
                    {
                        "id": "a1",
                        "name": "Asset one",
                        "signals": [{"id": "s1", "channel": "p1.d1.data_in.temp"}],
                        "content": [
                            {"path": "files/feature.bin", "enos_category": "feature"},
                            {"path": "files/fw.bin", "enos_category": "ota"},
                            {"path": "files/backup.csv~", "enos_category": "feature"},
                            {"path": "files/devlog.csv", "created_by": {"device": "p1.d1"},
                             "enos_category": "feature"},
                        ],
                    },
                    {"id": "a2", "name": "Asset two"},
                ],
            },
            {
                "id": "o-foreign",
                "applications": [{"app_key": OTHER_APP[0], "app_secret": OTHER_APP[1],
                                  "policies": ["asset:read", "asset:write"]}],
                "assets": [{"id": "a1", "name": "Same id, other org",
                            "content": [{"path": "files/other.bin", "enos_category": "feature"}]}],
            },
        ]
    }  # fmt: skip


@pytest.fixture(scope="module")
def enos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("enos-world")
    running = seed_and_start(
        root, enos_document(), enos_files(), {"ASSETFILES_ENOS_MAX_FILE_BYTES": str(MAX_FILE)}
    )
    yield running
    running.stop()


def token_request(
    server: Server, app_key: str, secret: str, *, path: str = "get", **extra: Any
) -> httpx.Response:
    timestamp = extra.pop("timestamp", int(time.time() * 1000))
    body = {"appKey": app_key, "encryption": encryption(app_key, timestamp, secret), "timestamp": timestamp}
    body.update(extra)
    return httpx.post(f"{server.base_url}/apim-token-service/v2.0/token/{path}", json=body)


def access_token(server: Server, app_key: str = "ak-rw") -> str:
    secret = APPS[app_key][0] if app_key in APPS else OTHER_APP[1]
    response = token_request(server, app_key, secret)
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["accessToken"]
    return token


def uris(server: Server) -> dict[str, str]:
    """name -> fileUri of o-enos's seeded EnOS files."""
    query = """query($d: [AssetContentsDeviceInput]) {
      assetContents(filters: {association: {type: "asset", id: "a1"}}, devices: $d) {
        assetContents { name enos { fileUri } } } }"""
    found = {}
    for devices in (None, [{"product_id": "p1", "device_id": "d1"}]):
        data = server.data(query, {"d": devices}, token=GQL_TOKEN)["assetContents"]["assetContents"]
        found.update({item["name"]: item["enos"]["fileUri"] for item in data if item["enos"]})
    return found


def files_get(server: Server, token: str | None, action: str = "download", **params: str) -> httpx.Response:
    headers = {"apim-accesstoken": token} if token else {}
    return httpx.get(
        f"{server.base_url}/connect-service/v2.1/files", params={"action": action, **params}, headers=headers
    )


# -- token service ------------------------------------------------------------------------------


def test_token_with_sha256_scheme_and_the_same_token_again(enos: Server) -> None:
    stamp = int(time.time() * 1000)
    first = token_request(enos, "ak-rw", APPS["ak-rw"][0], timestamp=stamp)
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == 0 and body["msg"] == "SUCCESS" and body["business"] == "apim-token-service"
    assert 7100 <= body["data"]["expire"] <= 7200
    again = token_request(enos, "ak-rw", APPS["ak-rw"][0], timestamp=str(stamp + 1))  # a string works too
    assert again.json()["data"]["accessToken"] == body["data"]["accessToken"]


def test_refresh_gives_a_new_token_and_keeps_the_old_for_the_grace_period(enos: Server) -> None:
    old = access_token(enos, "ak-refresh")
    response = token_request(enos, "ak-refresh", APPS["ak-refresh"][0], path="refresh", accessToken=old)
    assert response.status_code == 200, response.text
    new = response.json()["data"]["accessToken"]
    assert new != old and response.json()["data"]["expire"] == 7200
    uri = uris(enos)["feature.bin"]
    params = {"orgId": "o-enos", "fileUri": uri, "category": "feature", "assetId": "a1"}
    assert files_get(enos, new, **params).status_code == 200
    # requests still in flight with the old token (the Java SDK 0.1.x refreshes in the background)
    assert files_get(enos, old, **params).status_code == 200
    # a get now answers the new token, the one that lives longest
    assert access_token(enos, "ak-refresh") == new
    # a token that is not this application's cannot be refreshed
    foreign = token_request(enos, "ak-refresh", APPS["ak-refresh"][0], path="refresh", accessToken="nope")
    assert foreign.status_code == 401 and foreign.json()["status"] == 1204


def test_refresh_without_grace_retires_the_old_token_at_once(enos: Server) -> None:
    strict = start_server(enos.data_dir, {"ASSETFILES_ENOS_REFRESH_GRACE_SECONDS": "0"})
    try:
        old = access_token(strict, "ak-strict")
        response = token_request(strict, "ak-strict", APPS["ak-strict"][0], path="refresh", accessToken=old)
        assert response.status_code == 200, response.text
        uri = uris(enos)["feature.bin"]
        params = {"orgId": "o-enos", "fileUri": uri, "category": "feature", "assetId": "a1"}
        gone = files_get(strict, old, **params)
        assert gone.status_code == 401 and gone.json()["code"] == 1203
        assert files_get(strict, response.json()["data"]["accessToken"], **params).status_code == 200
    finally:
        strict.stop()


@pytest.mark.parametrize(
    ("change", "status", "code", "fragment"),
    [
        ({"appKey": ""}, 400, 1202, "appKey"),
        ({"encryption": None}, 400, 1202, "encryption"),
        ({"timestamp": ""}, 400, 1202, "timestamp"),
        ({"timestamp": "yesterday"}, 400, 1004, "timestamp"),
        ({"timestamp": 1.5}, 400, 1004, "timestamp"),
        ({"encryption": "ABC"}, 400, 1004, "encryption"),
        ({"appKey": "ak-nope"}, 401, 1002, "ak-nope"),
        ({"encryption": "0" * 64}, 401, 1003, "encryption"),
    ],
)
def test_token_service_bad_requests(
    enos: Server, change: dict[str, Any], status: int, code: int, fragment: str
) -> None:
    stamp = int(time.time() * 1000)
    body = {"appKey": "ak-rw", "encryption": encryption("ak-rw", stamp, APPS["ak-rw"][0]), "timestamp": stamp}
    body.update(change)
    response = httpx.post(f"{enos.base_url}/apim-token-service/v2.0/token/get", json=body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["status"] == code and fragment in answer["msg"] and answer["data"] is None


def test_token_service_refuses_stale_timestamps_and_junk(enos: Server) -> None:
    stamp = int(time.time() * 1000)
    first = token_request(enos, "ak-ro", APPS["ak-ro"][0], timestamp=stamp)
    assert first.status_code == 200
    # the same signed request again (EnOS's samples sign once per process): the same token
    repeat = token_request(enos, "ak-ro", APPS["ak-ro"][0], timestamp=stamp)
    assert repeat.status_code == 200
    assert repeat.json()["data"]["accessToken"] == first.json()["data"]["accessToken"]
    stale = token_request(enos, "ak-ro", APPS["ak-ro"][0], timestamp=stamp - 3_600_000)
    assert stale.status_code == 400 and stale.json()["status"] == 1004 and "timestamp" in stale.json()["msg"]
    junk = httpx.post(f"{enos.base_url}/apim-token-service/v2.0/token/get", content=b"{not json")
    assert junk.status_code == 400 and junk.json()["status"] == 1004
    missing = token_request(enos, "ak-ro", APPS["ak-ro"][0], path="refresh")
    assert (
        missing.status_code == 400
        and missing.json()["status"] == 1202
        and "accessToken" in missing.json()["msg"]
    )


def test_expired_token_is_1203(enos: Server) -> None:
    short = start_server(enos.data_dir, {"ASSETFILES_ENOS_TOKEN_TTL_SECONDS": "1"})
    try:
        token = access_token(short, "ak-expiry")
        time.sleep(1.2)
        uri = uris(enos)["feature.bin"]
        response = files_get(short, token, orgId="o-enos", fileUri=uri, category="feature", assetId="a1")
        assert response.status_code == 401
        assert response.json()["code"] == 1203 and "expired" in response.json()["msg"]
        refreshed = token_request(short, "ak-expiry", APPS["ak-expiry"][0], path="refresh", accessToken=token)
        assert refreshed.status_code == 200  # an expired token can be refreshed
    finally:
        short.stop()


# -- files ----------------------------------------------------------------------------------------


def test_download_by_asset_and_by_device_with_ranges(enos: Server) -> None:
    token = access_token(enos)
    found = uris(enos)
    feature = enos.files["files/feature.bin"]
    response = files_get(
        enos, token, orgId="o-enos", fileUri=found["feature.bin"], category="feature", assetId="a1"
    )
    assert response.status_code == 200 and response.content == feature
    assert response.headers["content-length"] == str(len(feature))
    devlog = enos.files["files/devlog.csv"]
    by_device = files_get(enos, token, orgId="o-enos", fileUri=found["devlog.csv"], category="feature",
                          productKey="p1", deviceKey="d1")  # fmt: skip
    assert by_device.status_code == 200 and by_device.content == devlog
    # the device's file also belongs to the asset it feeds
    via_asset = files_get(
        enos, token, orgId="o-enos", fileUri=found["devlog.csv"], category="feature", assetId="a1"
    )
    assert via_asset.content == devlog
    url = f"{enos.base_url}/connect-service/v2.1/files"
    params = {"action": "download", "orgId": "o-enos", "fileUri": found["feature.bin"], "category": "feature",
              "assetId": "a1"}  # fmt: skip
    for header, expected, content_range in [
        ("bytes=0-1023", feature[:1024], f"bytes 0-1023/{len(feature)}"),
        ("bytes=-100", feature[-100:], f"bytes {len(feature) - 100}-{len(feature) - 1}/{len(feature)}"),
        ("bytes=4000-", feature[4000:], f"bytes 4000-{len(feature) - 1}/{len(feature)}"),
    ]:
        ranged = httpx.get(url, params=params, headers={"apim-accesstoken": token, "Range": header})
        assert ranged.status_code == 206, header
        assert ranged.content == expected
        assert ranged.headers["content-range"] == content_range
        assert ranged.headers["accept-ranges"] == "bytes"
    unsatisfiable = httpx.get(url, params=params, headers={"apim-accesstoken": token, "Range": "bytes=9999-"})
    assert unsatisfiable.status_code == 416


def test_file_uri_raw_or_percent_encoded_and_asset_id_wins(enos: Server) -> None:
    token = access_token(enos)
    uri = uris(enos)["feature.bin"]
    raw = httpx.get(
        f"{enos.base_url}/connect-service/v2.1/files?action=download&orgId=o-enos&fileUri={uri}"
        "&category=feature&assetId=a1&productKey=p1&deviceKey=d2",  # assetId wins over a wrong device
        headers={"apim-accesstoken": token},
    )
    assert raw.status_code == 200 and raw.content == enos.files["files/feature.bin"]
    twice = httpx.get(
        f"{enos.base_url}/connect-service/v2.1/files?action=download&orgId=o-enos"
        f"&fileUri={uri.replace(':', '%253A').replace('/', '%252F')}&category=feature&assetId=a1",
        headers={"apim-accesstoken": token},
    )
    assert twice.status_code == 200


def test_file_info_and_download_url(enos: Server) -> None:
    token = access_token(enos, "ak-ro")
    uri = uris(enos)["fw.bin"]
    data = enos.files["files/fw.bin"]
    info = files_get(enos, token, "getFileInfo", orgId="o-enos", fileUri=uri, category="ota", assetId="a1")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["code"] == 0 and body["msg"] == "OK" and body["requestId"]
    assert body["data"] == {
        "orgId": "o-enos", "category": "ota", "fileUri": uri, "originalFilename": "fw.bin",
        "fileSize": len(data), "md5": md5hex(data), "signMethod": "md5",
        "sign": md5hex(data), "createTime": body["data"]["createTime"],
    }  # fmt: skip
    assert abs(body["data"]["createTime"] - time.time() * 1000) < 3_600_000
    link = files_get(enos, token, "getDownloadUrl", orgId="o-enos", fileUri=uri, category="ota", assetId="a1")
    assert link.status_code == 200
    assert httpx.get(link.json()["data"]).content == data  # signed: no token needed


def test_delete_needs_write_and_removes_the_file(enos: Server, tmp_path: Path) -> None:
    token = access_token(enos)
    uploaded = post_integration(enos, token, "postAttribute", {"params": [{"assetId": "a2", "attributes": {
        "doc": "local://doomed.txt"}}], "files": {"doomed.txt": {"featureId": "doc", "assetId": "a2"}}},
        {"doomed.txt": b"short-lived bytes"})  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    uri = uploaded.json()["data"]["doomed.txt"]
    params = {"action": "delete", "orgId": "o-enos", "fileUri": uri, "category": "feature", "assetId": "a2"}
    url = f"{enos.base_url}/connect-service/v2.1/files"
    read_only = httpx.post(url, params=params, headers={"apim-accesstoken": access_token(enos, "ak-ro")})
    assert read_only.status_code == 403 and read_only.json()["code"] == 403
    as_get = httpx.get(url, params=params, headers={"apim-accesstoken": token})
    assert as_get.status_code == 400 and "POST" in as_get.json()["msg"]
    deleted = httpx.post(url, params=params, headers={"apim-accesstoken": token})
    assert deleted.status_code == 200 and deleted.json()["code"] == 0
    gone = files_get(enos, token, orgId="o-enos", fileUri=uri, category="feature", assetId="a2")
    assert gone.status_code == 404
    digest = hashlib.sha256(b"short-lived bytes").hexdigest()
    assert digest not in stored_blobs(enos.data_dir)


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"action": None}, 400, "action"),
        ({"action": "explode"}, 400, "action"),
        ({"orgId": None}, 400, "orgId"),
        ({"orgId": "o-foreign"}, 403, "orgId"),
        ({"fileUri": None}, 400, "fileUri"),
        ({"fileUri": ""}, 400, "fileUri"),
        ({"fileUri": "http://x/y.bin"}, 400, "fileUri"),
        ({"fileUri": "enos-connect://../etc/passwd"}, 400, "fileUri"),
        ({"category": None}, 400, "category"),
        ({"category": "firmware"}, 400, "category"),
        ({"category": "ota"}, 404, "not found"),  # the file is a feature file
        ({"assetId": None}, 400, "assetId"),
        ({"assetId": None, "productKey": "p1"}, 400, "deviceKey"),
        ({"assetId": None, "deviceKey": "d1"}, 400, "productKey"),
        ({"assetId": "a2"}, 404, "not found"),  # another asset of the organization
        ({"assetId": "a-nope"}, 404, "not found"),
        ({"assetId": None, "productKey": "p1", "deviceKey": "d2"}, 404, "not found"),
        ({"fileUri": "enos-connect://0123456789abcdef.bin"}, 404, "not found"),
    ],
)
def test_files_bad_parameters(
    enos: Server, params: dict[str, str | None], status: int, fragment: str
) -> None:
    uri = uris(enos)["feature.bin"]
    base = {"action": "download", "orgId": "o-enos", "fileUri": uri, "category": "feature", "assetId": "a1"}
    query = {key: value for key, value in {**base, **params}.items() if value is not None}
    response = httpx.get(
        f"{enos.base_url}/connect-service/v2.1/files",
        params=query,
        headers={"apim-accesstoken": access_token(enos)},
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and fragment in body["msg"] and body["data"] is None and body["requestId"]


def test_files_without_or_with_a_bad_token(enos: Server) -> None:
    params = {"orgId": "o-enos", "fileUri": uris(enos)["feature.bin"], "category": "feature", "assetId": "a1"}
    for token in (None, "not-a-token"):
        response = files_get(enos, token, **params)
        assert response.status_code == 401 and response.json()["code"] == 401
        assert "apim-accesstoken" in response.json()["msg"]


def test_other_organization_sees_nothing(enos: Server) -> None:
    """A foreign application asking with its own orgId gets 'not found', never a hint."""
    token = access_token(enos, "ak-other")
    uri = uris(enos)["feature.bin"]
    response = files_get(enos, token, orgId="o-foreign", fileUri=uri, category="feature", assetId="a1")
    assert response.status_code == 404


# -- integration uploads ------------------------------------------------------------------------


def post_integration(
    server: Server,
    token: str,
    action: str,
    message: dict[str, Any] | str,
    files: dict[str, bytes],
    *,
    part_lengths: bool = True,
) -> httpx.Response:
    """A hand-built multipart body, as EnOS documents it (each file part with its Content-Length)."""
    body, content_type = integration_body(message, files, part_lengths=part_lengths)
    return httpx.post(
        f"{server.base_url}/connect-service/v2.1/integration",
        params={"action": action, "orgId": "o-enos"},
        content=body,
        headers={"apim-accesstoken": token, "Content-Type": content_type},
        timeout=30,
    )


def integration_body(
    message: dict[str, Any] | str, files: dict[str, bytes], *, part_lengths: bool = True
) -> tuple[bytes, str]:
    """An ``integration`` request's multipart body and its Content-Type."""
    boundary = "----enos-boundary-7MA4YWxkTrZu0gW"
    text = message if isinstance(message, str) else json.dumps({"method": "integration.x.post", "id": "1",
                                                                 "version": "1.1", **message})  # fmt: skip
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="enos-message"\r\n\r\n{text}\r\n'.encode()
    ]
    for name, data in files.items():
        length = f"Content-Length: {len(data)}\r\n" if part_lengths else ""
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="enos-file"; filename="{name}"\r\n'
            f"{length}Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def test_uploads_of_measurepoint_attribute_and_event_files_reach_graphql(enos: Server) -> None:
    token = access_token(enos)
    measured = b"t,pressure\n" + bytes(range(256)) * 40
    attribute = b"%PDF-1.4 manual\n" * 100
    event = b"event snapshot" * 50
    cases = [
        (
            "postMeasurepoint",
            "measurepoints",
            "pressure.csv",
            measured,
            {"productKey": "p1", "deviceKey": "d1"},
        ),
        ("postAttribute", "attributes", "manual.pdf", attribute, {"assetId": "a1"}),
        ("postEvent", "events", "snapshot.bin", event, {"productKey": "p1", "deviceKey": "d1"}),
    ]
    for action, key, name, data, owner in cases:
        message = {
            "params": [{**owner, key: {"file1": f"local://{name}", "value": 1}, "time": 1700000000000}],
            "files": {name: {"featureId": "file1", **owner, "md5": md5hex(data)}},
        }
        response = post_integration(enos, token, action, message, {name: data})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == 0 and body["msg"] == "OK" and body["requestId"]
        uri = body["data"][name]
        assert uri.startswith("enos-connect://") and len(uri.split("//")[1].split(".")[0]) == 16
        params = {"orgId": "o-enos", "fileUri": uri, "category": "feature", **owner}
        assert files_get(enos, token, **params).content == data
    # the device's uploads are device content of a1 (d1 feeds it), with the same bytes
    listing = enos.data(
        """query { assetContents(filters: {association: {type: "asset", id: "a1"}, name: "*.csv"},
           devices: [{product_id: "p1", device_id: "d1"}]) { assetContents { id name uploadedVia createdBy {
           ... on Device { pid identity } } enos { featureType featureId category } } } }""",
        token=GQL_TOKEN,
    )["assetContents"]["assetContents"]
    item = next(i for i in listing if i["name"] == "pressure.csv")
    assert item["createdBy"] == {"pid": "p1", "identity": "d1"} and item["uploadedVia"] == "enos-integration"
    assert item["enos"] == {"featureType": "measurepoint", "featureId": "file1", "category": "feature"}
    url = enos.data(
        "query($i: DeviceAssetContentInput!) { deviceAssetContent(input: $i) { url } }",
        {"i": {"id": item["id"], "product_id": "p1", "device_id": "d1"}},
        token=GQL_TOKEN,
    )["deviceAssetContent"]["url"]
    assert httpx.get(url).content == measured


def test_the_python_sample_single_quoted_message_is_accepted(enos: Server) -> None:
    message = (
        "{'method': 'integration.attribute.post', 'id': 123, 'version': '1.1', 'params': [{'assetId': "
        "'a2', 'attributes': {'Int_Attribute': 1, 'File_Attribute': 'local://Sample.txt'}}], 'files': {"
        "'Sample.txt': {'featureId': 'File_Attribute', 'originalFilename': 'Sample.txt', "
        "'fileExt': '.txt', 'assetId': 'a2', 'fileLength': 11}}}"
    )
    token = access_token(enos)
    files = {"Sample.txt": b"hello world"}
    response = post_integration(enos, token, "postAttribute", message, files, part_lengths=False)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["Sample.txt"].endswith(".txt")


def stored_state(server: Server) -> tuple[int, int]:
    blobs = len(stored_blobs(server.data_dir))
    total = server.data(
        '{ assetContents(filters: {association: {type: "asset", id: "a2"}}) { totalCount } }', token=GQL_TOKEN
    )["assetContents"]["totalCount"]
    return blobs, total


def _message(name: str = "f.bin", **entry: Any) -> dict[str, Any]:
    return {"params": [{"assetId": "a2", "attributes": {"f": f"local://{name}"}}],
            "files": {name: {"featureId": "f", "assetId": "a2", **entry}}}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "message", "files", "status", "fragment"),
    [
        ("postAttribute", _message(md5="0" * 32), {"f.bin": b"abc"}, 400, "md5"),
        ("postAttribute", _message(md5="xyz"), {"f.bin": b"abc"}, 400, "md5"),
        ("postAttribute", _message(), {"f.bin": b"x" * (MAX_FILE + 1)}, 413, "larger than"),
        ("postAttribute", _message(), {"g.bin": b"abc"}, 400, "g.bin"),
        ("postAttribute", _message(), {}, 400, "f.bin"),
        ("postAttribute", _message(assetId="a-nope"), {"f.bin": b"abc"}, 404, "a-nope"),
        ("postAttribute", _message(assetId=None, productKey="p1"), {"f.bin": b"abc"}, 400, "deviceKey"),
        ("postAttribute", _message(featureId=""), {"f.bin": b"abc"}, 400, "featureId"),
        ("postAttribute", {"params": [], "files": {}}, {}, 400, "params"),
        ("postAttribute", "{nope", {"f.bin": b"abc"}, 400, "enos-message"),
        ("postAttribute", "[" * 200, {"f.bin": b"abc"}, 400, "deeper than 64"),
        ("postAttribute", "{'params': [{'assetId': a2}]} trailing", {}, 400, "after the value"),
        ("postAttribute", b"\xff\xfe".decode("latin-1"), {}, 400, "enos-message"),
        (
            "postAttribute",
            {"params": [{"assetId": "a2", "attributes": {"f": "local://missing.bin"}}]},
            {},
            400,
            "missing.bin",
        ),
        ("postNothing", _message(), {"f.bin": b"abc"}, 400, "action"),
    ],
)
def test_upload_bad_input_stores_nothing(
    enos: Server,
    action: str,
    message: dict[str, Any] | str,
    files: dict[str, bytes],
    status: int,
    fragment: str,
) -> None:
    before = stored_state(enos)
    response = post_integration(enos, access_token(enos), action, message, files)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and fragment in body["msg"], body
    assert stored_state(enos) == before
    assert not list((enos.data_dir / "tmp").iterdir())  # no spooled part left behind


def test_upload_refusals_before_reading(enos: Server) -> None:
    message = _message()
    read_only = post_integration(
        enos, access_token(enos, "ak-ro"), "postAttribute", message, {"f.bin": b"abc"}
    )
    assert read_only.status_code == 403
    foreign = httpx.post(
        f"{enos.base_url}/connect-service/v2.1/integration",
        params={"action": "postAttribute", "orgId": "o-foreign"},
        content=b"x",
        headers={"apim-accesstoken": access_token(enos), "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert foreign.status_code == 403 and "orgId" in foreign.json()["msg"]
    not_multipart = httpx.post(
        f"{enos.base_url}/connect-service/v2.1/integration",
        params={"action": "postAttribute", "orgId": "o-enos"},
        json={"a": 1},
        headers={"apim-accesstoken": access_token(enos)},
    )
    assert not_multipart.status_code == 400 and "multipart" in not_multipart.json()["msg"]
    wrong_length = post_integration(enos, access_token(enos), "postAttribute", message, {"f.bin": b"abc"})
    assert wrong_length.status_code == 200  # a correct per-part Content-Length is fine


def test_file_count_limit(enos: Server) -> None:
    names = [f"f{i}.bin" for i in range(101)]
    message = {"params": [{"assetId": "a2", "attributes": {"x": 1}}],
               "files": {name: {"featureId": "x", "assetId": "a2"} for name in names}}  # fmt: skip
    before = stored_state(enos)
    response = post_integration(enos, access_token(enos), "postAttribute", message, {n: b"x" for n in names})
    assert response.status_code == 413 and "at most 100 files" in response.json()["msg"]
    assert stored_state(enos) == before


def test_message_limit(enos: Server) -> None:
    huge = _message()
    huge["padding"] = "x" * (512 * 1024)
    response = post_integration(enos, access_token(enos), "postAttribute", huge, {"f.bin": b"abc"})
    assert response.status_code == 413 and "enos-message" in response.json()["msg"]


def test_openapi_document_is_served_and_valid(enos: Server) -> None:
    response = httpx.get(f"{enos.base_url}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert {"/apim-token-service/v2.0/token/get", "/connect-service/v2.1/files",
            "/connect-service/v2.1/integration"} <= set(document["paths"])  # fmt: skip


# -- the client: assetfiles enos download ---------------------------------------------------------


def enos_cli(server: Server, *args: str, app: str = "ak-ro") -> Any:
    secret = APPS[app][0]
    credentials = ["--app-key", app, "--app-secret", secret, "--org", "o-enos"]
    return run_cli("enos", "download", "--url", server.base_url, *credentials, "--json", *args)


def test_enos_download_by_asset_and_by_device(enos: Server, tmp_path: Path) -> None:
    found = uris(enos)
    result = enos_cli(enos, "--asset", "a1", found["feature.bin"], found["devlog.csv"], str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name, key in (("feature.bin", "files/feature.bin"), ("devlog.csv", "files/devlog.csv")):
        local = tmp_path / found[name].removeprefix("enos-connect://")
        assert local.read_bytes() == enos.files[key]
    ota = enos_cli(enos, "--product", "p1", "--device", "d1", found["devlog.csv"], str(tmp_path / "d"))
    assert ota.returncode == 0, ota.stderr
    events = [json.loads(line) for line in ota.stdout.splitlines()]
    assert events[-1]["event"] == "summary" and events[-1]["downloaded"] == 1


def test_enos_download_failures(enos: Server, tmp_path: Path) -> None:
    found = uris(enos)
    missing = "enos-connect://0123456789abcdef.bin"
    partial = enos_cli(enos, "--asset", "a1", found["feature.bin"], missing, str(tmp_path))
    assert partial.returncode == 1
    events = [json.loads(line) for line in partial.stdout.splitlines()]
    failed = [event for event in events if event["event"] == "failed"]
    assert [event["content_id"] for event in failed] == [missing] and "not found" in failed[0]["reason"]
    wrong_category = enos_cli(enos, "--asset", "a1", "--category", "ota", found["feature.bin"], str(tmp_path))
    assert wrong_category.returncode == 1
    for args, fragment in [
        (["--asset", "a1", found["feature.bin"]], "FILE_URI and DEST"),
        (["--product", "p1", found["feature.bin"], str(tmp_path)], "--product and --device"),
        (["--asset", "a1", "http://x/y", str(tmp_path)], "enos-connect"),
        (["--asset", "a1", "--category", "firmware", found["feature.bin"], str(tmp_path)], "--category"),
    ]:
        result = enos_cli(enos, *args)
        assert result.returncode == 2 and fragment in result.stderr, (args, result.stderr)
    credentials = ["--app-key", "ak-ro", "--app-secret", "nope", "--org", "o-enos"]
    bad_secret = run_cli("enos", "download", "--url", enos.base_url, *credentials, "--asset", "a1",
                         found["feature.bin"], str(tmp_path))  # fmt: skip
    assert bad_secret.returncode == 2 and "refused" in bad_secret.stderr
    # an organization the application does not belong to refuses every file alike: a setup error
    elsewhere = ["--app-key", "ak-ro", "--app-secret", APPS["ak-ro"][0], "--org", "o-elsewhere"]
    wrong_org = run_cli("enos", "download", "--url", enos.base_url, *elsewhere, "--asset", "a1",
                        found["feature.bin"], str(tmp_path / "w"))  # fmt: skip
    assert wrong_org.returncode == 2 and "does not belong to organization 'o-elsewhere'" in wrong_org.stderr


def test_uris_minted_by_apply_are_uris_the_server_accepts(enos: Server) -> None:
    uri = uris(enos)["backup.csv~"]
    assert uri.startswith("enos-connect://") and uri.endswith(".bin")
    info = files_get(enos, access_token(enos), "getFileInfo", orgId="o-enos", fileUri=uri, category="feature",
                     assetId="a1")  # fmt: skip
    assert info.status_code == 200 and info.json()["data"]["originalFilename"] == "backup.csv~"


def test_unknown_text_fields_are_ignored_within_bounds(enos: Server) -> None:
    """EnOS's Python samples send a text field named Content-Disposition before the message."""
    url = f"{enos.base_url}/connect-service/v2.1/integration?action=postAttribute&orgId=o-enos"
    headers = {"apim-accesstoken": access_token(enos)}
    message = json.dumps({"method": "integration.attribute.post", **_message("ignored.bin")})
    parts: list[tuple[str, Any]] = [
        ("Content-Disposition", (None, "form-data")),
        ("enos-message", (None, message)),
        ("comment", (None, "anything")),
        ("enos-file", ("ignored.bin", b"bytes", "application/octet-stream")),
    ]
    answer = httpx.post(url, files=parts, headers=headers)
    assert answer.status_code == 200 and answer.json()["code"] == 0, answer.text
    before = stored_state(enos)
    too_many = [(f"field-{i}", (None, "x")) for i in range(17)] + parts[1:2]
    refused = httpx.post(url, files=too_many, headers=headers)
    assert refused.status_code == 400 and "more than 16 fields" in refused.json()["msg"]
    too_big = [("note", (None, "x" * (512 * 1024 + 1))), *parts[1:2]]
    refused = httpx.post(url, files=too_big, headers=headers)
    assert refused.status_code == 413 and "'note'" in refused.json()["msg"]
    unknown_file = [*parts[1:2], ("attachment", ("a.bin", b"x", "application/octet-stream"))]
    refused = httpx.post(url, files=unknown_file, headers=headers)
    assert refused.status_code == 400 and "attachment" in refused.json()["msg"]
    assert stored_state(enos) == before
    assert not list((enos.data_dir / "tmp").iterdir())
