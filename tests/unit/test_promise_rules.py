"""The rules behind the promises of test_promises.py, against stand-ins: organizations' thread
lanes, single-flight readiness, last-use writes, address keys, the scan cost of filtered listings."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest
from graphql import parse

from assetfiles.errors import BadInput
from assetfiles.model import Permission, TokenRecord
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
from assetfiles.service.changes import parse_last_event_id
from assetfiles.service.shares import ThreadShares
from assetfiles.store.threads import in_thread

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
