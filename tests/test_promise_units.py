"""The rules behind the promises of test_promises.py, in process: organizations' thread lanes,
single-flight readiness, last-use writes, address keys, the scan cost of filtered listings, and
(against a real SQLite catalog) retention's re-check and a backup that stays whole."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from graphql import parse

from assetfiles.config import Settings
from assetfiles.errors import BadInput
from assetfiles.model import CreatorKind, Permission, Principal, TokenRecord, now_ms
from assetfiles.server.graphql.limits import (
    ROWS_PER_POINT,
    TAG_FILTER_POINTS,
    listing_scans,
    rows_read,
    scan_cost,
    tag_filter_cost,
)
from assetfiles.server.throttle import address_key
from assetfiles.service import health
from assetfiles.service.access import Access
from assetfiles.service.backup import _copy_blobs
from assetfiles.service.changes import parse_last_event_id
from assetfiles.service.composition import Services
from assetfiles.service.shares import ThreadShares
from assetfiles.store.blobs import blob_path
from assetfiles.store.contents import ContentStore
from assetfiles.store.database import create_engine
from assetfiles.store.threads import in_thread
from tests.backends import BACKEND, BLOBS
from tests.helpers import run_cli, write_fixture

# -- organizations' lanes --------------------------------------------------------------------


class _BlockingStore:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    @in_thread
    def slow(self) -> None:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(30)
        with self._lock:
            self.running -= 1

    @in_thread
    def quick(self) -> str:
        return "answered"


def test_an_organizations_calls_hold_at_most_its_share_and_others_still_run() -> None:
    store = _BlockingStore()
    shares = ThreadShares(threads_per_org=3)

    async def as_org(org_id: str, call: Any) -> Any:
        shares.enter(org_id)  # what the faces do once they know the caller
        return await call()

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(30):  # one organization asks for far more than its share
                group.start_soon(as_org, "o-heavy", store.slow)
            await anyio.sleep(0.2)
            with anyio.fail_after(10):
                assert await as_org("o-light", store.quick) == "answered"
            assert store.most == 3
            store.release.set()

    anyio.run(scenario)


# -- readiness ---------------------------------------------------------------------------------


class _Blobs:
    async def check_writable(self) -> None:
        return None


def test_readiness_checks_once_for_concurrent_probes_and_answers_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hung = threading.Event()
    calls = []

    def hanging(engine: object, timeout_seconds: float | None = None) -> tuple[str, str]:
        calls.append(timeout_seconds)
        hung.wait(30)
        return "head", "head"

    monkeypatch.setattr(health, "schema_revisions", hanging)
    monkeypatch.setattr(health, "CHECK_SECONDS", 0.3)
    checker = health.Health(object(), _Blobs())  # type: ignore[arg-type]
    checker.fresh_seconds = 0

    async def scenario() -> None:
        answers = await asyncio.gather(*(checker.readiness() for _ in range(50)))
        assert all(answer["catalog"] == "does not answer (TimeoutError)" for answer in answers)
        # the abandoned check still hangs: the next probe starts no second one
        again = await checker.readiness()
        assert again["catalog"] == "does not answer (TimeoutError)"
        assert len(calls) == 1
        hung.set()
        for _ in range(50):
            if not checker._catalog_busy.is_set():
                break
            await asyncio.sleep(0.05)
        assert (await checker.readiness())["catalog"] == "ok"
        assert len(calls) == 2

    asyncio.run(scenario())
    hung.set()


# -- a token's last use ----------------------------------------------------------------------------


class _Tokens:
    def __init__(self) -> None:
        self.writes = 0
        self.record = TokenRecord("o-a", "t", frozenset({Permission.READ}), created_at=0)

    async def find_token(self, digest: str) -> tuple[str, TokenRecord]:
        await asyncio.sleep(0)
        return digest, self.record

    async def token_used(self, org_id: str, name: str, now: int, resolution_ms: int) -> bool:
        self.writes += 1
        await asyncio.sleep(0.01)
        return True


def test_concurrent_first_uses_of_a_token_write_its_last_use_once() -> None:
    tokens = _Tokens()
    access = Access(tokens, key=b"k" * 32)  # type: ignore[arg-type]

    async def scenario() -> None:
        principals = await asyncio.gather(*(access.token_principal("secret") for _ in range(150)))
        assert {p.name for p in principals} == {"t"}

    asyncio.run(scenario())
    assert tokens.writes == 1


# -- addresses, event ids, scan cost -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("-", "-"),
    ],
)
def test_per_address_bounds_count_ipv6_by_its_64(address: str, key: str) -> None:
    assert address_key(address) == key


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1\u00b3", "+1", " 1"])
def test_event_ids_must_be_ascii_digits(value: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_last_event_id(value)
    assert refused.value.field == "Last-Event-ID"


def _scans(query: str, variables: dict[str, Any] | None = None) -> list[tuple[int, int, Any]]:
    return [
        (scan.passes, scan.offset, scan.targets)
        for scan in listing_scans(parse(query), None, variables or {})
    ]


def test_filtered_listings_cost_the_rows_they_read_and_unfiltered_ones_do_not() -> None:
    documented = '{ assetContents(filters: {association: {type: "asset", id: "a"}}) { totalCount } }'
    assert _scans(documented) == [(0, 0, (("asset", "a"),))]
    tagged = """{ a: assetContents(filters: {name: "*x*", tags: [{name: "k"}, {name: "j", value: "v"}]}) {
        totalCount } b: assetContents(pagination: {offset: 700}) { totalCount } }"""
    assert _scans(tagged) == [(3, 0, None), (0, 700, None)]
    by_variable = """query($f: ContentFilters, $d: [AssetContentsDeviceInput]) {
        assetContents(filters: $f, devices: $d) { totalCount } }"""
    devices = [{"product_id": "p", "device_id": "d1"}, {"product_id": "p", "device_id": "d2"}]
    assert _scans(by_variable, {"f": {"contentTypes": ["text/csv"]}, "d": devices}) == [
        (1, 0, (("device", "p.d1"), ("device", "p.d2")))
    ]
    assert _scans(by_variable, {"f": {"contentTypes": []}, "d": None}) == [(0, 0, None)]
    scans = listing_scans(parse(tagged), None, {})
    assert rows_read(scans, [1000, 1000]) == 3 * 1000 + 700
    assert scan_cost(3700) == -(-3700 // ROWS_PER_POINT)
    deep = listing_scans(
        parse("{ assetContents(pagination: {offset: 1000000000}) { totalCount } }"), None, {}
    )
    assert rows_read(deep, [1000]) == 1000  # an offset reads at most every row
    fifty = "{ assetContents(filters: {tags: [" + '{name: "t"} ' * 50 + "]}) { totalCount } }"
    one = listing_scans(parse(fifty), None, {})
    assert scan_cost(rows_read(one * 200, [20_000] * 200)) > 60_000  # the report's query, on 20,000 files
    assert tag_filter_cost(one * 200) == 200 * 50 * TAG_FILTER_POINTS  # and on any organization


# -- against a real SQLite catalog ------------------------------------------------------------------

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
