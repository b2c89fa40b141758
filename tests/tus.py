"""The world and the small helpers of the tus tests (tests/e2e/test_tus.py, test_tus_client.py)."""

from __future__ import annotations

import base64
import random
from typing import Any

import httpx

from tests.helpers import Server

TOKEN = "tok-tus-rw-0123456789"
RO_TOKEN = "tok-tus-ro-0123456789"
FOREIGN_TOKEN = "tok-tus-foreign-0123456789"
DEVICE_SECRET = "d1-secret-0123"
TUS = {"Tus-Resumable": "1.0.0"}
AUTH = {**TUS, "Authorization": f"Automation {TOKEN}"}
PATCH = {**AUTH, "Content-Type": "application/offset+octet-stream"}
DATA = random.Random(22).randbytes(300_000)
CHUNK_BOUND = 9 * 1024 * 1024
#: an EnOS application of the world (the key and secret of tests/e2e/test_enos.py's "ak-rw")
ENOS_APP = ("ak-rw", "as-rw-secret-0123")


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-tus",
                "tokens": [
                    {"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]},
                    {"name": "ro", "secret": RO_TOKEN, "permissions": ["read"]},
                ],
                "applications": [{"app_key": ENOS_APP[0], "app_secret": ENOS_APP[1],
                                  "policies": ["asset:read"]}],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": DEVICE_SECRET},
                                                      {"id": "d2", "secret": "d2-secret-0123"}]}],
                "assets": [
                    {"id": "a1", "name": "Asset one",
                     "signals": [{"id": "s1", "channel": "p1.d1.data_in.t"}]},
                    {"id": "a2", "name": "Asset two"},
                ],
            },
            {
                "id": "o-other",
                "tokens": [{"name": "rw", "secret": FOREIGN_TOKEN, "permissions": ["read", "write"]}],
                "assets": [{"id": "a1", "name": "Other org's a1"}],
            },
        ]
    }  # fmt: skip


def metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def create(
    server: Server, length: int | None, headers: dict[str, str] | None = None, **meta: str
) -> httpx.Response:
    sizing = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    fields = {"filename": "clip.bin", "asset": "a1", **meta}
    return httpx.post(
        f"{server.base_url}/files/",
        headers={**AUTH, **sizing, "Upload-Metadata": metadata(**fields), **(headers or {})},
    )


def patch(url: str, offset: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.patch(url, content=body, headers={**PATCH, "Upload-Offset": str(offset), **(headers or {})})


def gql(server: Server, query: str, variables: dict[str, Any] | None = None, token: str = TOKEN) -> Any:
    answer = httpx.post(
        f"{server.base_url}/api/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Automation {token}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def content(server: Server, content_id: str) -> dict[str, Any]:
    found = gql(server, "query($id: ID!) { content(id: $id) { id name length sha256 md5 uploadedVia url "
                        "createdBy { __typename } } }", {"id": content_id})["data"]["content"]  # fmt: skip
    assert found is not None
    return dict(found)
