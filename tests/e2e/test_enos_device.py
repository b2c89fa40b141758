"""The EnOS device HTTP API, byte for byte as EnOS's device SDK (enos-device-sdk-java, enos-http-sdk's
``HttpConnection``) sends and parses it, over real sockets.

What the SDK does, from its source: the login body is Gson's ``AuthRequestBody`` (``signMethod``,
``lifetime`` in ms, ``sign``, ``clientInfo``, ``acceptCommandTypes``), signed by ``SignUtil``
(sorted ``key+value`` pairs of productKey, deviceKey, lifetime and signMethod, then the secret,
sha256 hex); the sample's broker URL ends in ``/`` so every path starts ``//``. A measurepoint
with a file is OkHttp's ``MultipartBody`` (FORM): an ``enos-message`` part (the request's JSON,
``files`` keyed by a generated name with ``fileLength`` as a string) and an ``enos-file`` part
per file with ``Content-MD5`` in hex; with a progress listener the body is sent chunked. The
answer is decoded by Gson into ``MeasurepointPostResponse`` (``id``, ``code``, ``data``,
``message``), the SDK checking ``code`` == 200, not the HTTP status. Downloads parse
``Content-length`` as an int; ``FileDownloadResponse.id`` is an int and ``FileDeleteResponse``
has ``code`` and ``message``.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Server, device_login_sign, md5hex, run_cli, seed_and_start

PK, DK, SECRET = "pk-sensor", "dk-0001", "dk-0001-secret-abcdef"
OTHER_DK, OTHER_SECRET = "dk-0002", "dk-0002-secret-abcdef"
TOKEN = "tok-enos-device-rw-0123"
APP, APP_SECRET = "ak-device-world", "as-device-world-secret"
CLIP = random.Random(21).randbytes(70_000)


def _document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-dev",
                "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
                "applications": [{"app_key": APP, "app_secret": APP_SECRET, "policies": ["asset:read"]}],
                "products": [
                    {
                        "id": PK,
                        "devices": [
                            {"id": DK, "secret": SECRET},
                            {"id": OTHER_DK, "secret": OTHER_SECRET},
                            {"id": "dk-unsealed"},
                        ],
                    }
                ],
                "assets": [
                    {
                        "id": "turbine-7",
                        "name": "Turbine 7",
                        "signals": [{"id": "s1", "channel": f"{PK}.{DK}.data_in.t"}],
                    }
                ],
            }
        ]
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = seed_and_start(tmp_path_factory.mktemp("enos-device"), _document(), {})
    yield running
    running.stop()


class DeviceSdk:
    """What HttpConnection puts on the wire, with the sample's broker URL (ending in ``/``)."""

    def __init__(
        self, server: Server, device_key: str = DK, secret: str = SECRET, lifetime: int = 300_000
    ) -> None:
        self.broker = server.base_url + "/"
        self.device_key, self.secret, self.lifetime = device_key, secret, lifetime
        self.session_id: str | None = None
        self.message_id = 0

    def auth(self, **changes: Any) -> httpx.Response:
        body = {
            "signMethod": "sha256",
            "lifetime": self.lifetime,
            "sign": device_login_sign(PK, self.device_key, self.lifetime, self.secret),
            "clientInfo": {"ipAddress": "10.1.2.3", "sdkVersion": "2.3.0"},
            "acceptCommandTypes": [],
        }
        body.update(changes)
        response = httpx.post(
            self.broker + f"/auth/{PK}/{self.device_key}",
            content=json.dumps(body),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if response.status_code == 200 and response.json()["code"] == 200:
            self.session_id = response.json()["data"]["sessionId"]
        return response

    def message(self, files: dict[str, tuple[str, bytes]], **points: Any) -> dict[str, Any]:
        """A MeasurepointPostRequest's JSON: ``files`` maps a measurepoint to (original name, bytes)."""
        self.message_id += 1
        generated = {point: f"{uuid.uuid4().hex}{Path(name).suffix}" for point, (name, _) in files.items()}
        measurepoints = {**points, **{point: f"local://{generated[point]}" for point in files}}
        return {
            "id": str(self.message_id),
            "version": "1.1",
            "method": "thing.measurepoint.post",
            "params": {"measurepoints": measurepoints, "time": int(time.time() * 1000)},
            "files": {
                generated[point]: {
                    "featureId": point,
                    "fileName": generated[point],
                    "originalFilename": name,
                    "fileLength": str(len(data)),
                    "fileExt": Path(name).suffix,
                    "md5": md5hex(data),
                }
                for point, (name, data) in files.items()
            },
        }

    def post(
        self,
        message: dict[str, Any],
        files: dict[str, bytes],
        *,
        lark: bool = False,
        chunked: bool = False,
        content_md5: dict[str, str] | None = None,
        session_id: str | None = None,
    ) -> httpx.Response:
        """OkHttp's MultipartBody as the SDK builds it; ``files`` maps the generated names to bytes."""
        boundary = uuid.uuid4().hex
        encoded = json.dumps(message).encode()
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="enos-message"\r\n'
            f"Content-Length: {len(encoded)}\r\n\r\n".encode()
            + encoded
            + b"\r\n"
        ]
        for name, data in files.items():
            md5 = (content_md5 or {}).get(name, md5hex(data))
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="enos-file"; filename="{name}"\r\n'
                f"Content-MD5: {md5}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        url = self.broker + f"/multipart/sys/{PK}/{self.device_key}/thing/measurepoint/post"
        url += f"?sessionId={session_id or self.session_id}" + ("&useLark=true" if lark else "")
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        content: Any = (body[i : i + 8192] for i in range(0, len(body), 8192)) if chunked else body
        return httpx.post(url, content=content, headers=headers, timeout=30)

    def file_url(self, action: str, file_uri: str, category: str = "feature") -> str:
        return (
            self.broker + f"/multipart/sys/{PK}/{self.device_key}/file/{action}?sessionId={self.session_id}"
            f"&fileUri={file_uri}&category={category}"
        )


@pytest.fixture
def sdk(world: Server) -> DeviceSdk:
    device = DeviceSdk(world)
    answer = device.auth()
    assert answer.status_code == 200 and answer.json()["code"] == 200, answer.text
    return device


def _post_clip(
    sdk: DeviceSdk, data: bytes = CLIP, name: str = "clip-0001.mp4", **options: Any
) -> httpx.Response:
    message = sdk.message({"clip": (name, data)}, temperature=21.5)
    generated = next(iter(message["files"]))
    return sdk.post(message, {generated: data}, **options)


def test_login_answers_a_session_as_the_sdk_parses_it(world: Server) -> None:
    device = DeviceSdk(world)
    answer = device.auth()
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"code", "data", "message"} and body["code"] == 200
    assert isinstance(body["data"]["sessionId"], str) and len(body["data"]["sessionId"]) >= 40


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"sign": "0" * 64}, 401, "signature"),
        ({"lifetime": 0}, 400, "lifetime"),
        ({"lifetime": "300000"}, 400, "lifetime"),
        ({"signMethod": "rsa"}, 400, "signMethod"),
        ({"sign": None}, 400, "sign"),
    ],
)
def test_bad_logins_are_refused_naming_what_is_wrong(
    world: Server, change: dict[str, Any], status: int, fragment: str
) -> None:
    answer = DeviceSdk(world).auth(**change)
    assert answer.status_code == status and answer.json()["code"] == status
    assert fragment in answer.json()["message"] and answer.json()["data"] is None


def test_wrong_secrets_unknown_devices_and_unsealed_ones_cannot_log_in(world: Server) -> None:
    for device in (
        DeviceSdk(world, secret="not-the-secret-000"),
        DeviceSdk(world, device_key="dk-9999"),
        DeviceSdk(world, device_key=OTHER_DK, secret=SECRET),
        DeviceSdk(world, device_key="dk-unsealed"),
    ):
        answer = device.auth()
        assert answer.status_code == 401 and answer.json()["code"] == 401, answer.text
        assert device.session_id is None


def test_a_posted_file_is_the_devices_content_everywhere(
    world: Server, sdk: DeviceSdk, tmp_path: Path
) -> None:
    answer = _post_clip(sdk, chunked=True)  # as with the sample's progress listener
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["code"] == 200 and body["id"] == str(sdk.message_id) and body["message"] == ""
    ((_generated, uri),) = body["data"].items()
    assert uri.startswith("enos-connect://") and uri.endswith(".mp4")
    # the ExoSense listing of the asset the device feeds, and deviceAssetContent's URL
    listing = world.data(
        """query { assetContents(filters: {association: {type: "asset", id: "turbine-7"}},
           devices: [{product_id: "pk-sensor", device_id: "dk-0001"}]) { assetContents { id name length
           uploadedVia createdBy { ... on Device { pid identity } }
           enos { fileUri featureId category } } } }""",
        token=TOKEN,
    )["assetContents"]["assetContents"]
    item = next(i for i in listing if i["enos"] and i["enos"]["fileUri"] == uri)
    assert item["name"] == "clip-0001.mp4" and item["length"] == len(CLIP)
    assert item["createdBy"] == {"pid": PK, "identity": DK} and item["uploadedVia"] == "enos-device"
    assert item["enos"]["featureId"] == "clip" and item["enos"]["category"] == "feature"
    url = world.data(
        "query($i: DeviceAssetContentInput!) { deviceAssetContent(input: $i) { url } }",
        {"i": {"id": item["id"], "product_id": PK, "device_id": DK}},
        token=TOKEN,
    )
    assert httpx.get(url["deviceAssetContent"]["url"]).content == CLIP
    # the EnOS application API, by the device
    params = {
        "action": "download",
        "orgId": "o-dev",
        "fileUri": uri,
        "category": "feature",
        "productKey": PK,
        "deviceKey": DK,
    }
    app = httpx.get(
        f"{world.base_url}/connect-service/v2.1/files",
        params=params,
        headers={"apim-accesstoken": access_token_of(world)},
    )
    assert app.status_code == 200 and app.content == CLIP
    # the device's own download, whole and ranged, with the headers the SDK reads
    whole = httpx.get(sdk.file_url("download", uri))
    assert (
        whole.status_code == 200
        and whole.content == CLIP
        and int(whole.headers["content-length"]) == len(CLIP)
    )
    ranged = httpx.get(sdk.file_url("download", uri), headers={"Range": "bytes=100-"})
    assert ranged.status_code == 206 and ranged.content == CLIP[100:]
    assert int(ranged.headers["content-length"]) == len(CLIP) - 100
    assert ranged.headers["content-range"] == f"bytes 100-{len(CLIP) - 1}/{len(CLIP)}"
    assert ranged.headers["accept-ranges"] == "bytes"
    # and assetfiles sync, byte-identical
    synced = run_cli("sync", "turbine-7", str(tmp_path), "--url", world.base_url, "--token", TOKEN, "--quiet")
    assert synced.returncode == 0, synced.stderr
    assert CLIP in {path.read_bytes() for path in tmp_path.rglob("*.mp4")}


def access_token_of(world: Server) -> str:
    stamp = int(time.time() * 1000)
    body = {
        "appKey": APP,
        "timestamp": stamp,
        "encryption": hashlib.sha256(f"{APP}{stamp}{APP_SECRET}".encode()).hexdigest(),
    }
    answer = httpx.post(f"{world.base_url}/apim-token-service/v2.0/token/get", json=body)
    token: str = answer.json()["data"]["accessToken"]
    return token


def test_download_url_and_delete_answer_the_sdks_response_classes(world: Server, sdk: DeviceSdk) -> None:
    uri = next(iter(_post_clip(sdk, b"to be deleted", "note.txt").json()["data"].values()))
    located = httpx.get(sdk.file_url("download/url", uri)).json()
    assert located["code"] == 200 and "id" not in located  # FileDownloadResponse.id is an int
    assert httpx.get(located["data"]).content == b"to be deleted"
    deleted = httpx.post(sdk.file_url("delete", uri))
    assert deleted.status_code == 200 and deleted.json()["code"] == 200
    gone = httpx.get(sdk.file_url("download", uri))
    assert gone.status_code == 404 and gone.json()["code"] == 404 and "fileUri" in gone.json()["message"]


def test_the_lark_exchange_reserves_then_takes_the_put(world: Server, sdk: DeviceSdk) -> None:
    data = b"uploaded to the URL the answer gave\n" * 100
    message = sdk.message({"log": ("daily.log", data)})
    generated = next(iter(message["files"]))
    answer = sdk.post(message, {}, lark=True)
    assert answer.status_code == 200 and answer.json()["code"] == 200, answer.text
    (info,) = answer.json()["data"]
    assert info["filename"] == generated and info["fileUri"].startswith("enos-lark://")
    assert isinstance(info["headers"], dict)
    put = httpx.put(
        info["uploadUrl"],
        content=data,
        headers={**info["headers"], "Content-Type": "application/octet-stream"},
    )
    assert put.status_code in (200, 201), put.text
    assert httpx.get(sdk.file_url("download", info["fileUri"])).content == data


def test_a_device_reaches_only_its_own_files(world: Server, sdk: DeviceSdk) -> None:
    uri = next(iter(_post_clip(sdk, b"mine", "mine.txt").json()["data"].values()))
    other = DeviceSdk(world, device_key=OTHER_DK, secret=OTHER_SECRET)
    assert other.auth().json()["code"] == 200
    for action in ("download", "download/url"):
        refused = httpx.get(other.file_url(action, uri))
        assert refused.status_code == 404 and refused.json()["code"] == 404
    assert httpx.post(other.file_url("delete", uri)).json()["code"] == 404
    # nor with its own session on the first device's paths
    borrowed = httpx.get(
        sdk.file_url("download", uri).replace(f"sessionId={sdk.session_id}", f"sessionId={other.session_id}")
    )
    assert borrowed.status_code == 401 and borrowed.json()["code"] == 401
    assert httpx.get(sdk.file_url("download", uri)).content == b"mine"


def test_expired_missing_and_forged_sessions_are_refused(world: Server) -> None:
    short = DeviceSdk(world, lifetime=1000)
    assert short.auth().json()["code"] == 200
    time.sleep(1.2)
    expired = _post_clip(short)
    assert (
        expired.status_code == 401
        and expired.json()["code"] == 401
        and "expired" in expired.json()["message"]
    )
    for session in ("", "forged-session-0123456789", "x" * 300):
        answer = _post_clip(short, session_id=session or "")
        assert answer.status_code == 401 and answer.json()["code"] == 401


def test_a_failed_post_stores_nothing(world: Server, sdk: DeviceSdk) -> None:
    before = _device_file_count(world)
    wrong_md5 = _post_clip(sdk, content_md5={})  # the message's md5 is right; now break the part's header
    assert wrong_md5.json()["code"] == 200
    message = sdk.message({"clip": ("bad.bin", b"some bytes")})
    generated = next(iter(message["files"]))
    broken = sdk.post(message, {generated: b"some bytes"}, content_md5={generated: "0" * 32})
    assert broken.status_code == 400 and broken.json()["code"] == 400
    assert "Content-MD5" in broken.json()["message"] and broken.json()["id"] == message["id"]
    lying = sdk.message({"clip": ("lie.bin", b"declared bytes")})
    lying_name = next(iter(lying["files"]))
    answer = sdk.post(lying, {lying_name: b"other bytes!!!"})
    assert answer.json()["code"] == 400 and "md5" in answer.json()["message"]
    foreign = sdk.message({"clip": ("x.bin", b"x")})
    foreign_name = next(iter(foreign["files"]))
    foreign["files"][foreign_name]["deviceKey"] = OTHER_DK
    assert sdk.post(foreign, {foreign_name: b"x"}).json()["code"] == 400
    assert _device_file_count(world) == before + 1  # only the good post above


def _device_file_count(world: Server) -> int:
    page = world.data(
        """query { assetContents(filters: {association: {type: "asset", id: "turbine-7"}},
           devices: [{product_id: "pk-sensor", device_id: "dk-0001"}]) { totalCount } }""",
        token=TOKEN,
    )
    count: int = page["assetContents"]["totalCount"]
    return count


def test_bad_upload_requests_are_answered_in_the_ack_shape(world: Server, sdk: DeviceSdk) -> None:
    url = sdk.broker + f"/multipart/sys/{PK}/{DK}/thing/measurepoint/post?sessionId={sdk.session_id}"
    cases = [
        (httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"}), "Content-Type"),
        (httpx.post(url + "&useLark=maybe", content=b"x"), "useLark"),
        (sdk.post({"method": "thing.event.post", "params": {}}, {}), "method"),
        (sdk.post({"params": []}, {}), "params"),
    ]
    for answer, fragment in cases:
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["code"] == 400 and fragment in body["message"], body


def test_sessions_are_listed_and_revoked_from_the_cli(world: Server) -> None:
    device = DeviceSdk(world, device_key=OTHER_DK, secret=OTHER_SECRET)
    assert device.auth().json()["code"] == 200
    assert device.session_id is not None
    listed = run_cli("device", "sessions", "--org", "o-dev", "--json", "--data-dir", str(world.data_dir))
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"org": "o-dev", "device": f"{PK}.{OTHER_DK}", "protocol": "enos"}.items() <= records[-1].items()
    assert device.session_id not in listed.stdout
    revoked = run_cli("device", "revoke-sessions", "--org", "o-dev", "--device", f"{PK}.{OTHER_DK}",
                      "--data-dir", str(world.data_dir))  # fmt: skip
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    answer = httpx.get(device.file_url("download/url", "enos-connect://0123456789abcdef.txt"))
    assert answer.status_code == 401 and answer.json()["code"] == 401
    bad = run_cli(
        "device", "revoke-sessions", "--org", "o-dev", "--device", "no-dot", "--data-dir", str(world.data_dir)
    )
    assert bad.returncode == 2 and "--device" in bad.stderr


def test_the_same_message_sent_again_is_answered_again_not_stored_twice(
    world: Server, sdk: DeviceSdk
) -> None:
    """Re-publishing the same request object (same id, same generated names, same bytes) after a
    lost answer gets the first answer; the same id with other bytes is a new message, and another
    session's message with that id is its own."""
    before = _device_file_count(world)
    message = sdk.message({"clip": ("retry.bin", b"sent twice")})
    name = next(iter(message["files"]))
    first = sdk.post(message, {name: b"sent twice"}).json()
    again = sdk.post(message, {name: b"sent twice"}, chunked=True).json()
    assert first["code"] == again["code"] == 200 and first["data"] == again["data"]
    assert _device_file_count(world) == before + 1
    changed = dict(message, files={name: dict(message["files"][name], md5=md5hex(b"other bytes"))})
    other = sdk.post(changed, {name: b"other bytes"}).json()
    assert other["code"] == 200 and other["data"] != first["data"]
    fresh = DeviceSdk(world)
    assert fresh.auth().json()["code"] == 200
    elsewhere = fresh.post(message, {name: b"sent twice"}).json()
    assert elsewhere["code"] == 200 and elsewhere["data"] != first["data"]
    assert _device_file_count(world) == before + 3


def test_each_upload_path_is_recorded(world: Server, sdk: DeviceSdk) -> None:
    """The same device's file through our device upload and through the EnOS device API."""
    put = httpx.put(f"{world.base_url}/api/devices/{PK}/{DK}/content", params={"name": "via-put.txt"},
                    content=b"put", headers={"Authorization": f"Device {SECRET}"})  # fmt: skip
    assert put.status_code == 201, put.text
    message = sdk.message({"log": ("via-lark.txt", b"lark")})
    (info,) = sdk.post(message, {}, lark=True).json()["data"]
    assert httpx.put(info["uploadUrl"], content=b"lark").status_code in (200, 201)
    listing = world.data(
        """query { assetContents(filters: {association: {type: "asset", id: "turbine-7"}, name: "via-*"},
           devices: [{product_id: "pk-sensor", device_id: "dk-0001"}]) {
           assetContents { name uploadedVia } } }""",
        token=TOKEN,
    )["assetContents"]["assetContents"]
    assert {item["name"]: item["uploadedVia"] for item in listing} == {
        "via-put.txt": "device-api",
        "via-lark.txt": "enos-device",
    }
