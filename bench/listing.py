"""Listing benchmark: the documented assetContents query on an asset with 100,000 contents in an
organization with 1,000,000, first page and a deep page, through the real server over HTTP;
the deep page both by offset and by the keyset cursor (an addition).

    python -m bench.listing [--rows 1000000] [--asset-rows 100000] [--requests 400] [--workers 1]
                            [--database-url postgresql://postgres@127.0.0.1:5432/assetfiles_bench]

The catalog is generated once into bench/results/listing-data (reused when it already holds the
requested rows). Latency is measured with one sequential client (p50/p99); throughput with
8 concurrent clients for a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from assetfiles.config import Settings
from assetfiles.model import Asset, Association, Content, Creator, CreatorKind, Permission
from assetfiles.service.composition import Stores
from assetfiles.service.secrets import token_hash
from assetfiles.store.database import create_engine, migrate, normalize_url
from bench.common import RESULTS, percentiles, save, start_server, stop

TOKEN = "tok-bench-0123456789"
QUERY = """query assetContents($filters: ContentFilters, $pagination: Pagination, $id: [ID!], $devices: [AssetContentsDeviceInput]) {
  assetContents(filters: $filters, pagination: $pagination, id: $id, devices: $devices) {
    assetContents { id name associations { type id } tags { name value } contentType
      createdBy { ... on Device { pid identity } ... on User { name } } type lastModified length }
    totalCount nextCursor
  }
}"""  # noqa: E501
BATCH = 20_000
OTHER_ASSETS = 900


async def populate(settings: Settings, rows: int, asset_rows: int) -> None:
    stores = Stores.on(create_engine(settings.catalog_url))
    await stores.principals.upsert_organization("o-bench", "Bench")
    await stores.principals.upsert_token(
        "o-bench", "bench", token_hash(TOKEN, settings.signing_key), [Permission.READ]
    )
    await stores.assets.upsert_asset(Asset("o-bench", "a-bench", "Bench asset"))
    for index in range(OTHER_ASSETS):
        await stores.assets.upsert_asset(Asset("o-bench", f"a-other-{index}", f"Other {index}"))
    base = int(time.time() * 1000) - rows
    types = ("text/csv", "application/pdf", "image/png", "application/json")
    for start in range(0, rows, BATCH):
        batch = []
        for number in range(start, min(rows, start + BATCH)):
            target = "a-bench" if number % (rows // asset_rows) == 0 else f"a-other-{number % OTHER_ASSETS}"
            digest = hashlib.sha256(str(number).encode()).hexdigest()
            batch.append(
                Content(
                    id=str(uuid.UUID(int=number + 1)),
                    org_id="o-bench",
                    name=f"file-{number:07d}.dat",
                    content_type=types[number % len(types)],
                    type="file",
                    length=1000 + number,
                    sha256=digest,
                    md5=digest[:32],
                    creator=Creator(CreatorKind.USER, "bench"),
                    created_at=base + number,
                    updated_at=base + number,
                    tags={"batch": str(number // BATCH)},
                    associations=(Association("asset", target),),
                )
            )
        await stores.contents.insert_contents(batch)
        print(f"  {start + len(batch):>9,} rows", end="\r", flush=True)
    print()
    stores.engine.dispose()


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's database, through the server's maintenance database."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    admin = create_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def variables(offset: int, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    pagination: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {"offset": offset})}
    return {
        "filters": {
            "contentTypes": [],
            "orderBy": "updated_at",
            "sort": "desc",
            "association": {"type": "asset", "id": "a-bench"},
        },
        "pagination": pagination,
        "devices": None,
    }


async def one(
    session: aiohttp.ClientSession, url: str, offset: int, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    headers = {"Authorization": f"Automation {TOKEN}"}
    async with session.post(
        url, json={"query": QUERY, "variables": variables(offset, cursor, limit)}, headers=headers
    ) as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200 and "errors" not in body, body
        return body


async def last_page_cursor(base: str, rows: int) -> str:
    """Walk the asset by cursor (1,000 per page) to the cursor whose page is the last 50 rows."""
    url = f"{base}/api/graphql"
    cursor: str | None = None
    seen = 0
    async with aiohttp.ClientSession() as session:
        while seen < rows - 50:
            limit = min(1000, rows - 50 - seen)
            page = (await one(session, url, 0, cursor, limit))["data"]["assetContents"]
            seen += len(page["assetContents"])
            cursor = str(page["nextCursor"])
    assert cursor is not None
    return cursor


async def measure(
    base: str, offset: int, requests: int, expected_total: int, cursor: str | None = None
) -> dict[str, Any]:
    url = f"{base}/api/graphql"
    async with aiohttp.ClientSession() as session:
        body = await one(session, url, offset, cursor)
        assert body["data"]["assetContents"]["totalCount"] == expected_total
        assert len(body["data"]["assetContents"]["assetContents"]) == 50
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            await one(session, url, offset, cursor)
            samples.append((time.perf_counter() - started) * 1000)
        done = 0
        deadline = time.perf_counter() + 5

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await one(session, url, offset, cursor)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(8)))
        rate = done / (time.perf_counter() - started)
    return {**percentiles(samples), "requests_per_s": round(rate, 1), "offset": offset}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--asset-rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--data-dir", type=Path, default=RESULTS / "listing-data")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--database-url", help="Catalog on this database (e.g. PostgreSQL) instead of SQLite in --data-dir."
    )
    args = parser.parse_args()
    backend = "sqlite"
    if args.database_url:
        backend = make_url(normalize_url(args.database_url)).get_backend_name()
        if args.data_dir == RESULTS / "listing-data":
            args.data_dir = RESULTS / f"listing-data-{backend}"

    marker = args.data_dir / f"populated-{args.rows}-{args.asset_rows}"
    settings = Settings(data_dir=args.data_dir, database_url=args.database_url)
    if not marker.exists():
        if args.data_dir.exists():
            import shutil

            shutil.rmtree(args.data_dir)
        args.data_dir.mkdir(parents=True)
        if args.database_url:
            recreate_database(args.database_url)
        migrate(settings.catalog_url)
        started = time.perf_counter()
        print(f"generating {args.rows:,} contents ({args.asset_rows:,} on the benchmark asset)")
        asyncio.run(populate(settings, args.rows, args.asset_rows))
        print(f"  generated in {time.perf_counter() - started:.0f} s")
        if backend == "postgresql":
            # What autovacuum does after a bulk load, done now: planner statistics and the
            # visibility map that lets deep pages walk the index without visiting the table.
            engine = create_engine(settings.catalog_url)
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            engine.dispose()
        marker.touch()
    env = {"ASSETFILES_DATABASE_URL": args.database_url} if args.database_url else None
    process, base = start_server(args.data_dir, workers=args.workers, env=env)
    try:
        first = asyncio.run(measure(base, 0, args.requests, args.asset_rows))
        deep = asyncio.run(measure(base, args.asset_rows - 50, args.requests, args.asset_rows))
        cursor = asyncio.run(last_page_cursor(base, args.asset_rows))
        keyset = asyncio.run(measure(base, 0, args.requests, args.asset_rows, cursor))
    finally:
        stop(process)
    result = {
        "backend": backend,
        "rows": args.rows,
        "asset_rows": args.asset_rows,
        "workers": args.workers,
        "first_page": first,
        "deep_page": deep,
        "deep_over_first_p50": round(deep["p50_ms"] / first["p50_ms"], 2),
        "deep_cursor_page": keyset,
        "deep_cursor_over_first_p50": round(keyset["p50_ms"] / first["p50_ms"], 2),
    }
    for label, figures in (("first page", first), ("deep page", deep), ("deep cursor", keyset)):
        print(f"{label:11}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
              f"{figures['requests_per_s']} req/s")  # fmt: skip
    saved = save(f"listing-{backend}", result)
    print(f"deep/first : {result['deep_over_first_p50']}x by offset, "
          f"{result['deep_cursor_over_first_p50']}x by cursor (saved to {saved})")  # fmt: skip


if __name__ == "__main__":
    main()
