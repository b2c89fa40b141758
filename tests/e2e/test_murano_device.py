"""The Murano device API's activation and content calls, as murano-client (``gdc``, PyPI) sends them:
``POST /provision/activate`` with ``Content-Type: application/x-www-form-urlencoded; charset=utf-8``
and the body ``id=<identity>``; ``GET /provision/download`` (``?id=<name>``, ``&info=true``) with
``X-Exosite-CIK: <token>`` (its default header), over real sockets."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import Server, run_cli, seed_and_start

PRODUCT = "p7k2q9"
FIRMWARE = random.Random(5).randbytes(50_000)
CONFIG = b'{"interval": 60}\n'
FORM = {
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "User-Agent": "murano-client-py/21.12.22",
}


def _document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-murano",
                "products": [
                    {
                        "id": PRODUCT,
                        "devices": [
                            {"id": "pump-007", "activation": "enabled"},
                            {"id": "pump-008"},
                            {"id": "pump-009", "activation": "enabled"},
                        ],
                    }
                ],
                "assets": [
                    {
                        "id": "station-1",
                        "name": "Station 1",
                        "signals": [{"id": "s1", "channel": f"{PRODUCT}.pump-007.data_in.p"}],
                        "content": [
                            {
                                "path": "files/firmware.bin",
                                "name": "firmware.bin",
                                "tags": {"description": "pump firmware 2.1"},
                            },
                            {"path": "files/config.json", "name": "config.json"},
                        ],
                    },
                    {
                        "id": "station-2",
                        "name": "Station 2",
                        "content": [{"path": "files/secret.bin", "name": "secret.bin"}],
                    },
                ],
            }
        ]
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    files = {
        "files/firmware.bin": FIRMWARE,
        "files/config.json": CONFIG,
        "files/secret.bin": b"not for pumps",
    }
    running = seed_and_start(tmp_path_factory.mktemp("murano"), _document(), files)
    yield running
    running.stop()


def _host(world: Server) -> str:
    return world.base_url + f"/murano/{PRODUCT}/"  # what `gdc -H <host>` is pointed at


def activate(world: Server, identity: str, host: str | None = None) -> httpx.Response:
    return httpx.post((host or _host(world)) + "provision/activate", content=f"id={identity}", headers=FORM)


@pytest.fixture(scope="module")
def token(world: Server) -> str:
    answer = activate(world, "pump-007")
    assert answer.status_code == 200, answer.text
    return answer.text


def content(world: Server, token: str, query: str = "", **headers: str) -> httpx.Response:
    return httpx.get(_host(world) + "provision/download" + query, headers={"X-Exosite-CIK": token, **headers})


def test_activation_answers_a_40_character_token_once(world: Server, token: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{40}", token)
    again = activate(world, "pump-007")
    assert again.status_code == 409 and "activat" in again.text
    assert activate(world, "pump-008").status_code == 409  # not enabled
    unknown = activate(world, "pump-404")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/plain")


def test_the_content_area_lists_infos_and_downloads_what_the_device_feeds(world: Server, token: str) -> None:
    listing = content(world, token)
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/csv")
    assert sorted(listing.text.split()) == ["config.json", "firmware.bin"]  # not station-2's file
    info = content(world, token, "?id=firmware.bin&info=true")
    kind, size, updated, description = info.text.strip().split(",")
    assert (kind, int(size), description) == ("application/octet-stream", len(FIRMWARE), "pump firmware 2.1")
    assert int(updated) > 1_600_000_000
    whole = content(world, token, "?id=firmware.bin")
    assert whole.status_code == 200 and whole.content == FIRMWARE
    assert int(whole.headers["content-length"]) == len(FIRMWARE)
    ranged = content(world, token, "?id=firmware.bin", Range="bytes=-100")
    assert ranged.status_code == 206 and ranged.content == FIRMWARE[-100:]
    assert (
        ranged.headers["content-range"] == f"bytes {len(FIRMWARE) - 100}-{len(FIRMWARE) - 1}/{len(FIRMWARE)}"
    )
    assert content(world, token, "?id=secret.bin").status_code == 404


def test_every_documented_way_of_presenting_the_token(world: Server, token: str) -> None:
    url = _host(world) + "provision/download"
    basic = base64.b64encode(f"pump-007:{token}".encode()).decode()
    for headers in (
        {"X-Exosite-CIK": token},
        {"Authorization": f"token {token}"},
        {"Authorization": f"Basic {basic}"},
    ):
        assert httpx.get(url, headers=headers).status_code == 200, headers
    wrong_identity = base64.b64encode(f"pump-008:{token}".encode()).decode()
    for headers in (
        {},
        {"X-Exosite-CIK": "x" * 40},
        {"Authorization": f"Basic {wrong_identity}"},
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Bearer {token}"},
    ):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401 and token not in refused.text, headers
    other_product = httpx.get(
        world.base_url + "/murano/other-prod/provision/download", headers={"X-Exosite-CIK": token}
    )
    assert other_product.status_code == 401


def test_a_product_host_reaches_its_device_api_at_the_root(world: Server, token: str) -> None:
    port = world.base_url.rsplit(":", 1)[1]
    with httpx.Client(headers={"Host": f"{PRODUCT}.localhost:{port}"}) as client:
        listing = client.get(world.base_url + "/provision/download", headers={"X-Exosite-CIK": token})
        assert listing.status_code == 200 and "firmware.bin" in listing.text
        activated = client.post(world.base_url + "/provision/activate", content="id=pump-009", headers=FORM)
        assert activated.status_code == 200 and len(activated.text) == 40
    no_product = httpx.get(world.base_url + "/provision/download", headers={"X-Exosite-CIK": token})
    assert no_product.status_code == 404 and "/murano/<product_id>/" in no_product.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "id"),
        ("name=pump-007", "id"),
        ("id=pump 007", "id"),
        ("id=a&id=b", "id"),
        ("id=" + "x" * 2000, "body"),
    ],
)
def test_bad_activations_are_refused_naming_the_field(world: Server, body: str, fragment: str) -> None:
    answer = httpx.post(_host(world) + "provision/activate", content=body, headers=FORM)
    assert answer.status_code == 400 and fragment in answer.text, answer.text


def test_bad_content_requests_are_refused(world: Server, token: str) -> None:
    for query, headers, status, message in [
        ("?id=firmware.bin&info=maybe", {}, 400, "info: must be true, not 'maybe'"),
        ("?id=nothing-here", {}, 404, "id: no content 'nothing-here' for this device"),
        ("?id=firmware.bin", {"Range": "bytes=999999-"}, 416, "Range: not satisfiable for this content"),
    ]:
        answer = content(world, token, query, **headers)
        assert answer.status_code == status and answer.text == message, (query, answer.text)
        assert answer.headers["content-type"].startswith("text/plain")


def test_an_operator_lets_a_device_activate_again_and_the_old_token_stops(world: Server, token: str) -> None:
    enabled = run_cli(
        "device",
        "enable-activation",
        "--org",
        "o-murano",
        "--device",
        f"{PRODUCT}.pump-007",
        "--data-dir",
        str(world.data_dir),
    )
    assert enabled.returncode == 0, enabled.stderr
    fresh = activate(world, "pump-007")
    assert fresh.status_code == 200 and fresh.text != token
    assert content(world, token).status_code == 401
    assert content(world, fresh.text).status_code == 200
    unknown = run_cli(
        "device",
        "enable-activation",
        "--org",
        "o-murano",
        "--device",
        f"{PRODUCT}.pump-404",
        "--data-dir",
        str(world.data_dir),
    )
    assert unknown.returncode == 2 and "pump-404" in unknown.stderr
