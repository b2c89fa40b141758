"""Hostile requests leave the server answering others: over real sockets, against the process
that serves them (how fast is measured by bench/hostile.py; the mechanisms have app-tier tests)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from tests.conftest import RO
from tests.helpers import Server


@pytest.mark.parametrize("shape", ["overlapping", "fragments"])
def test_pathological_documents_leave_other_requests_answered(server: Server, shape: str) -> None:
    """While hostile documents are checked, /healthz keeps answering (how fast: bench/hostile.py;
    that the checks run off the event loop: test_unseen_documents_are_checked_on_a_worker_thread)."""
    if shape == "overlapping":
        hostile = '{ asset(id: "a-pump-7") { ' + " ".join(f"n{i}: name" for i in range(4_000)) + " } }"
    else:
        fragments = "\n".join(f"fragment F{i} on Asset {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
        hostile = '{ asset(id: "a-pump-7") { ...F0 } }\n' + fragments + "\nfragment F40 on Asset { id }"
    stop = threading.Event()
    flooded = []

    def flood() -> None:
        with httpx.Client(timeout=60) as client:
            index = 0
            while not stop.is_set():
                index += 1  # a new text each time: nothing comes from the cache
                answer = client.post(
                    server.graphql_url,
                    json={"query": f"{hostile} # {index}"},
                    headers={"Authorization": f"Automation {RO}"},
                )
                flooded.append(answer.status_code)

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    probes: list[int] = []
    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(50):
                probes.append(client.get(f"{server.base_url}/healthz").status_code)
                time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert probes == [200] * 50
    assert flooded and set(flooded) <= {200, 400}


def test_a_flood_of_bad_device_credentials_leaves_other_requests_answered(server: Server) -> None:
    """While 40 wrong secrets (known and unknown devices) are checked, /healthz keeps answering;
    how fast is measured by bench/hostile.py, the mechanisms (scrypt off the event loop, one
    verification for an unknown device too) by test_device_secrets_are_checked_off_the_loop_*."""

    async def flood() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def wrong(index: int) -> int:
                device = "pump-007" if index % 2 else f"nobody-{index}"
                url = f"{server.base_url}/api/devices/p7k2q9/{device}/content?name=x.txt"
                answer = await client.put(
                    url, content=b"x", headers={"Authorization": "Device wrong-secret-0123"}
                )
                return answer.status_code

            async def probe() -> list[int]:
                statuses = []
                for _ in range(25):
                    statuses.append((await client.get(f"{server.base_url}/healthz")).status_code)
                    await asyncio.sleep(0.02)
                return statuses

            probing = asyncio.ensure_future(probe())
            refused = await asyncio.gather(*(wrong(i) for i in range(40)))
            return await probing, list(refused)

    probes, refused = asyncio.run(flood())
    assert set(probes) == {200} and len(probes) == 25
    assert set(refused) == {401}
