"""One seeded server for the integration suite, started once per session on a free port."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import drop_test_databases
from tests.helpers import Server, seed_and_start

RW = "tok-acme-rw-0123456789"
RO = "tok-acme-ro-0123456789"
OTHER = "tok-other-0123456789"
MAX_UPLOAD = 8 * 1024 * 1024
LIST_ITEMS = 25
EXTENSIONS = (".csv", ".txt", ".json")


def world_files() -> dict[str, bytes]:
    rng = random.Random(42)
    files = {
        "files/manual.pdf": b"%PDF-1.4\n% pump manual\n" + rng.randbytes(3000),
        "files/photo.png": b"\x89PNG\r\n\x1a\n" + rng.randbytes(5000),
        "files/data.bin": rng.randbytes(1024 * 1024 + 17),
        "files/log-a.csv": b"t,v\n" + b"".join(f"{i},{i * 2}\n".encode() for i in range(500)),
        "files/log-b.csv": b"t,flow\n" + b"".join(f"{i},{i * 3}\n".encode() for i in range(300)),
        "files/secret-log.csv": b"t,secret\n1,2\n",
        "files/b.txt": b"the other organization's file\n",
        "files/other-log.csv": b"t,other\n1,1\n",
    }
    for index in range(LIST_ITEMS):
        files[f"files/list/item-{index:02d}{EXTENSIONS[index % 3]}"] = rng.randbytes(index * 100 + 1)
    return files


def world_document() -> dict[str, Any]:
    list_content = [
        {
            "path": f"files/list/item-{index:02d}{EXTENSIONS[index % 3]}",
            "tags": {"parity": "even" if index % 2 == 0 else "odd", "index": str(index)},
            "created_by": {"user": "carol"},
        }
        for index in range(LIST_ITEMS)
    ]
    return {
        "organizations": [
            {
                "id": "o-acme",
                "name": "Acme",
                "tokens": [
                    {"name": "rw", "secret": RW, "permissions": ["read", "write"]},
                    {"name": "ro", "secret": RO, "permissions": ["read"]},
                ],
                "products": [
                    {
                        "id": "p7k2q9",
                        "devices": [
                            {"id": "pump-007", "secret": "dev-pump-007-secret"},
                            {"id": "pump-008", "secret": "dev-pump-008-secret"},
                            {"id": "pump-009", "secret": "dev-pump-009-secret"},
                        ],
                    }
                ],
                "assets": [
                    {
                        "id": "a-pump-7",
                        "name": "Pump 7",
                        "description": "Main feed pump",
                        "meta": {"site": "north", "floors": [1, 2]},
                        "signals": [
                            {
                                "id": "s-temp",
                                "name": "Temperature",
                                "channel": "p7k2q9.pump-007.data_in.temp",
                            },
                            {"id": "s-flow", "name": "Flow", "channel": "p7k2q9.pump-008.data_in.flow"},
                        ],
                        "content": [
                            {
                                "path": "files/manual.pdf",
                                "content_type": "application/pdf",
                                "tags": {"kind": "manual"},
                                "created_by": {"user": "alice"},
                            },
                            {
                                "path": "files/photo.png",
                                "tags": {"kind": "photo", "site": "north"},
                                "created_by": {"user": "bob"},
                            },
                            {"path": "files/data.bin", "name": "data 1.bin", "enos_category": "ota"},
                            {"path": "files/log-a.csv", "created_by": {"device": "p7k2q9.pump-007"}},
                            {"path": "files/log-b.csv", "created_by": {"device": "p7k2q9.pump-008"}},
                        ],
                    },
                    {"id": "a-list", "name": "Listing asset", "content": list_content},
                    {
                        "id": "a-other",
                        "name": "Other pump",
                        "signals": [{"id": "s-x", "channel": "p7k2q9.pump-009.data_in.x"}],
                        "content": [
                            {"path": "files/secret-log.csv", "created_by": {"device": "p7k2q9.pump-009"}}
                        ],
                    },
                    {"id": "a-empty", "name": "Empty asset"},
                ],
            },
            {
                "id": "o-other",
                "name": "Other Corp",
                "tokens": [{"name": "main", "secret": OTHER, "permissions": ["read", "write"]}],
                "products": [
                    {"id": "p7k2q9", "devices": [{"id": "pump-007", "secret": "other-pump-007-secret"}]}
                ],
                "assets": [
                    {
                        "id": "b-asset",
                        "name": "B asset",
                        "signals": [{"id": "s-b", "channel": "p7k2q9.pump-007.data_in.temp"}],
                        "content": [
                            {"path": "files/b.txt"},
                            {"path": "files/other-log.csv", "created_by": {"device": "p7k2q9.pump-007"}},
                        ],
                    }
                ],
            },
        ]
    }


@pytest.fixture(scope="session", autouse=True)
def fresh_test_databases() -> None:
    """On PostgreSQL, start without the databases an earlier run left."""
    drop_test_databases()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("world")
    env = {"ASSETFILES_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    running = seed_and_start(root, world_document(), world_files(), env)
    yield running
    running.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
