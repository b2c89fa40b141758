"""Promises under races on a real data directory, with the CLI as users run it: retention
against a concurrent write, a backup against a concurrent delete."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from assetfiles.config import Settings
from assetfiles.model import CreatorKind, Permission, Principal, now_ms
from assetfiles.service.backup import _copy_blobs
from assetfiles.service.composition import Services
from assetfiles.store.blobs import blob_path
from assetfiles.store.contents import ContentStore
from assetfiles.store.database import create_engine
from tests.backends import BACKEND, BLOBS
from tests.helpers import run_cli, write_fixture

# -- organizations' lanes --------------------------------------------------------------------


local_sqlite = pytest.mark.skipif(
    BACKEND != "sqlite" or BLOBS != "local", reason="reads the embedded default's files directly"
)


def _applied(tmp_path: Path, organization: dict[str, Any], files: dict[str, bytes]) -> Path:
    fixture = write_fixture(tmp_path, {"organizations": [organization]}, files)
    data_dir = tmp_path / "data"
    applied = run_cli("apply", str(fixture), "--data-dir", str(data_dir))
    assert applied.returncode == 0, applied.stderr
    return data_dir


@local_sqlite
def test_retention_keeps_what_was_modified_after_its_plan(tmp_path: Path) -> None:
    names = ["a.txt", "b.txt", "c.txt"]
    organization = {
        "id": "o-ret",
        "assets": [{"id": "a-1", "name": "A", "content": [{"path": f"files/{n}"} for n in names]}],
        "retention": [{"delete_after_days": 0}],
    }
    data_dir = _applied(tmp_path, organization, {f"files/{n}": n.encode() for n in names})
    time.sleep(0.01)  # the contents are older than now, to the millisecond

    async def scenario() -> None:
        services = await Services.open(Settings(data_dir=data_dir, secret_key="k" * 32))
        try:
            retention = services.retention
            stale = await retention.plan(now_ms())
            assert sorted(d.name for d in stale) == names
            kept = next(d for d in stale if d.name == "b.txt")
            both = frozenset({Permission.READ, Permission.WRITE})
            user = Principal("o-ret", "user", both, CreatorKind.TOKEN)
            await services.contents.set_tags(user, kept.content_id, {"keep": "yes"})

            async def stale_plan(now: int, org_id: str | None = None) -> list[Any]:
                return stale

            retention.plan = stale_plan  # type: ignore[method-assign]
            deleted = await retention.apply(now_ms())
            assert sorted(d.name for d in deleted) == ["a.txt", "c.txt"]
            assert (await services.contents.get(user, kept.content_id)).tags == {"keep": "yes"}
        finally:
            await services.close()

    asyncio.run(scenario())


@local_sqlite
def test_a_backup_drops_the_contents_deleted_while_it_copied_and_stays_whole(tmp_path: Path) -> None:
    files = {f"files/{n}.bin": n.encode() * 1000 for n in ("keep", "gone", "also")}
    organization = {
        "id": "o-bak",
        "assets": [{"id": "a-1", "name": "A", "content": [{"path": p} for p in files]}],
    }
    data_dir = _applied(tmp_path, organization, files)
    backup = tmp_path / "backup"
    backup.mkdir()
    live = sqlite3.connect(data_dir / "catalog.sqlite3")
    copy = sqlite3.connect(backup / "catalog.sqlite3")
    live.backup(copy)  # the snapshot
    copy.close()
    live.close()
    # deleted in the live system after the snapshot: its bytes are gone before the copy reaches them
    import hashlib

    gone = hashlib.sha256(files["files/gone.bin"]).hexdigest()
    (data_dir / "blobs" / blob_path(gone)).unlink()
    store = ContentStore(create_engine(f"sqlite:///{backup / 'catalog.sqlite3'}"))
    try:
        copied, _ = anyio.run(_copy_blobs, store, data_dir / "blobs", backup / "blobs")
    finally:
        store.engine.dispose()
    assert copied == 2
    checked = run_cli("fsck", "--data-dir", str(backup), "--verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 problem" in checked.stdout
    shown = run_cli("usage", "--org", "o-bak", "--json", "--data-dir", str(backup))
    assert '"contentCount": 2' in shown.stdout and f'"storedBytes": {8000}' in shown.stdout
