"""Console benchmark: the first view of an asset with 10,000 files, rendered in Chromium.

    python -m bench.console [--files 10000] [--rounds 7]

Generates (once, into bench/results/console-data) an organization whose benchmark asset holds
``--files`` contents, starts ``assetfiles serve``, and opens ``/console#/asset/a-bench`` in
Debian's Chromium (headless, driven by Playwright), signed in, in a fresh browser context each
round (nothing cached). The time is the browser's own clock from navigation start until the
first page of 50 rows and the total count are in the DOM. In the same run, as references:
the same listing query sent alone over HTTP by a Python client (what the API costs), and the
sign-in view (what loading the console's own files costs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from tests.browser import chromium

from assetfiles.config import Settings
from assetfiles.store.database import migrate
from bench.common import RESULTS, save, start_server, stop
from bench.listing import QUERY, TOKEN, populate, variables

RENDERED = """(expected) => {
  const rows = document.querySelectorAll('#files tbody tr').length;
  const count = document.getElementById('files-count').textContent;
  return rows === 50 && count.endsWith(expected) ? performance.now() : false;
}"""
SIGN_IN_SHOWN = "() => !document.getElementById('sign-in').hidden ? performance.now() : false"


def prepare(data_dir: Path, files: int) -> None:
    marker = data_dir / f"populated-{files}"
    if marker.exists():
        return
    if data_dir.exists():
        import shutil

        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    settings = Settings(data_dir=data_dir)
    migrate(settings.catalog_url)
    asyncio.run(populate(settings, files, files))
    marker.touch()


def api_listing_ms(base: str, rounds: int) -> list[float]:
    samples = []
    with httpx.Client(headers={"Authorization": f"Automation {TOKEN}"}) as client:
        for _ in range(rounds + 1):
            started = time.perf_counter()
            answer = client.post(f"{base}/api/graphql", json={"query": QUERY, "variables": variables(0)})
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and "errors" not in answer.json()
    return samples[1:]


def browser_ms(base: str, rounds: int, expected: str) -> tuple[list[float], list[float]]:
    first_view, sign_in = [], []
    with chromium() as browser:
        for _ in range(rounds + 1):  # the first round warms the server and the browser binary
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/console")
            sign_in.append(float(page.wait_for_function(SIGN_IN_SHOWN).json_value()))
            page.evaluate("token => sessionStorage.setItem('assetfiles.token', token)", TOKEN)
            page.goto("about:blank")
            page.goto(f"{base}/console#/asset/a-bench")
            first_view.append(float(page.wait_for_function(RENDERED, arg=expected).json_value()))
            context.close()
    return first_view[1:], sign_in[1:]


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=RESULTS / "console-data")
    args = parser.parse_args()
    prepare(args.data_dir, args.files)
    server, base = start_server(args.data_dir)
    try:
        api = api_listing_ms(base, args.rounds)
        first_view, sign_in = browser_ms(base, args.rounds, f"of {args.files:,}")
    finally:
        stop(server)
    result = {
        "files": args.files,
        "rounds": args.rounds,
        "first_view_of_asset": summary(first_view),
        "sign_in_view": summary(sign_in),
        "listing_query_alone": summary(api),
        "target_ms": 1000,
    }
    result["first_view_over_listing_query"] = round(
        result["first_view_of_asset"]["median_ms"] / result["listing_query_alone"]["median_ms"], 1
    )
    print(result)
    print(f"results: {save('console', result)}")


if __name__ == "__main__":
    main()
