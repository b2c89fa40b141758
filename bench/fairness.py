"""Fairness benchmark: the worst GraphQL query the cost limit lets one organization send, its
time, and what it does to another organization's requests.

    python -m bench.fairness [--rows 20000] [--attackers 16] [--seconds 10] [--workers 1]
                             [--threads-per-org 40]

An organization of ``--rows`` contents (each with five tags, all on one asset) sends the most
expensive filtered listing its cost allows: every tag filter matches every row except the last,
so the catalog checks each row tag by tag. That query is timed alone, then ``--attackers``
clients send it in a loop while a quiet organization's client asks ``{ currentToken { name } }``
one request at a time; the quiet client's latency under attack is compared with the same
client's on the idle server, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import time
import uuid
from typing import Any

import aiohttp

from assetfiles.config import Settings
from assetfiles.model import Asset, Association, Content, Creator, CreatorKind, Permission
from assetfiles.server.graphql.limits import MAX_COST, MAX_ROOT_FIELDS, TAG_FILTER_POINTS, scan_cost
from assetfiles.service.composition import Stores
from assetfiles.service.secrets import token_hash
from assetfiles.store.database import create_engine, migrate
from bench.common import RESULTS, percentiles, save, start_server, stop

HEAVY, LIGHT = "tok-bench-heavy-0123456789", "tok-bench-light-0123456789"
TAGS = {f"t{index}": "v" for index in range(5)}
QUIET = "{ currentToken { name } }"
MAX_TAG_FILTERS = 50  # what a listing's filters.tags may hold


async def populate(settings: Settings, rows: int) -> None:
    stores = Stores.on(create_engine(settings.catalog_url))
    for org, token in (("o-heavy", HEAVY), ("o-light", LIGHT)):
        await stores.principals.upsert_organization(org, org)
        await stores.principals.upsert_token(
            org, "bench", token_hash(token, settings.signing_key), [Permission.READ]
        )
    await stores.assets.upsert_asset(Asset("o-heavy", "a-heavy", "Heavy"))
    now = int(time.time() * 1000)
    for start in range(0, rows, 5000):
        batch = []
        for number in range(start, min(rows, start + 5000)):
            digest = hashlib.sha256(str(number).encode()).hexdigest()
            batch.append(
                Content(
                    id=str(uuid.UUID(int=number + 1)),
                    org_id="o-heavy",
                    name=f"file-{number:07d}.dat",
                    content_type="text/csv",
                    type="file",
                    length=100,
                    sha256=digest,
                    md5=digest[:32],
                    creator=Creator(CreatorKind.USER, "bench"),
                    created_at=now - number,
                    updated_at=now - number,
                    tags=TAGS,
                    associations=(Association("asset", "a-heavy"),),
                )
            )
        await stores.contents.insert_contents(batch)
    stores.engine.dispose()


def allowed_queries(rows: int) -> list[tuple[str, dict[str, Any], int, int]]:
    """For a few numbers of tag filters per listing (none, some, the most a listing takes), as
    many filtered listings (aliases) as the cost allows; each tag one that every row has but the
    last, which none has, so no row is ruled out before its last check. Returns (query,
    variables, listings, tags per listing) for each."""

    def cost(listings: int, tags: int) -> int:
        static = 2 * listings  # each listing and its totalCount
        return static + TAG_FILTER_POINTS * listings * tags + scan_cost(listings * (1 + tags) * rows)

    field = "assetContents(filters: $f, pagination: {limit: 1}) { totalCount }"
    matching = [{"name": name, "value": "v"} for name in TAGS]
    shapes = []
    for tags_each in (0, 9, MAX_TAG_FILTERS):
        fitting = [k for k in range(1, MAX_ROOT_FIELDS + 1) if cost(k, tags_each) <= MAX_COST]
        if not fitting:
            continue
        listings = max(fitting)
        tags = [*(matching[index % len(matching)] for index in range(tags_each - 1)), {"name": "absent"}]
        aliases = " ".join(f"l{index}: {field}" for index in range(listings))
        variables = {"f": {"name": "file-*", "tags": tags[:tags_each]}}
        shapes.append(("query($f: ContentFilters) { " + aliases + " }", variables, listings, tags_each))
    return shapes


async def post(session: aiohttp.ClientSession, url: str, token: str, query: str, variables: Any) -> float:
    started = time.perf_counter()
    async with session.post(
        url, json={"query": query, "variables": variables}, headers={"Authorization": f"Automation {token}"}
    ) as response:
        body = await response.json()
        assert response.status == 200 and "errors" not in body, body
    return (time.perf_counter() - started) * 1000


async def measure(url: str, rows: int, attackers: int, seconds: float) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(3):
            await post(session, url, LIGHT, QUIET, None)
        idle = [await post(session, url, LIGHT, QUIET, None) for _ in range(100)]
        shapes = {}
        for query, variables, listings, tags in allowed_queries(rows):
            alone = [await post(session, url, HEAVY, query, variables) for _ in range(3)]
            shapes[f"{listings} listings x {tags} tag filters"] = (percentiles(alone), query, variables)
        worst = max(shapes, key=lambda name: shapes[name][0]["p50_ms"])
        _, query, variables = shapes[worst]
        stop_at = time.monotonic() + seconds
        attacked: list[float] = []
        heavy: list[float] = []

        async def attacker() -> None:
            while time.monotonic() < stop_at:
                heavy.append(await post(session, url, HEAVY, query, variables))

        async def quiet() -> None:
            await asyncio.sleep(0.5)
            while time.monotonic() < stop_at:
                attacked.append(await post(session, url, LIGHT, QUIET, None))

        await asyncio.gather(quiet(), *(attacker() for _ in range(attackers)))
    return {
        "rows": rows,
        "allowed_queries_alone": {name: timing for name, (timing, _, _) in shapes.items()},
        "slowest": worst,
        "slowest_answered_under_attack": len(heavy),
        "slowest_under_attack": percentiles(heavy),
        "other_org_idle": percentiles(idle),
        "other_org_under_attack": percentiles(attacked),
        "other_org_p50_ratio": round(percentiles(attacked)["p50_ms"] / percentiles(idle)["p50_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--attackers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--threads-per-org", type=int, default=None, help="catalog_threads_per_org (40: no lanes, to compare)"
    )
    args = parser.parse_args()
    data_dir = RESULTS / "fairness-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir=data_dir, secret_key="bench-fairness-key-0123456789abcdef")
    migrate(settings.catalog_url)
    asyncio.run(populate(settings, args.rows))
    env = {"ASSETFILES_SECRET_KEY": settings.secret_key or "", "ASSETFILES_ACCESS_LOG": "false",
           "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": ""}  # fmt: skip
    if args.threads_per_org is not None:
        env["ASSETFILES_CATALOG_THREADS_PER_ORG"] = str(args.threads_per_org)
    server, base = start_server(data_dir, workers=args.workers, env=env)
    try:
        result = asyncio.run(measure(f"{base}/api/graphql", args.rows, args.attackers, args.seconds))
    finally:
        stop(server)
    result["workers"] = args.workers
    result["threads_per_org"] = (
        args.threads_per_org or Settings.model_fields["catalog_threads_per_org"].default
    )
    print(save("fairness", result))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
