"""Rate windows in memory, and the fall-back to this process's memory when the shared store fails."""

from __future__ import annotations

import asyncio

import pytest
from limits import parse
from pydantic import ValidationError

from assetfiles.cli.background import free_port
from assetfiles.config import Settings, shown_settings
from assetfiles.server.rate_windows import RateWindows, check_storage_url, without_password


def _hits(windows: RateWindows, count: int) -> list[bool]:
    item = parse("3/minute")

    async def run() -> list[bool]:
        return [await windows.hit(item, "credential", "o/token/rw") for _ in range(count)]

    return asyncio.run(run())


def test_memory_windows_allow_the_limit_then_refuse() -> None:
    assert _hits(RateWindows(), 5) == [True, True, True, False, False]


def test_an_unreachable_redis_falls_back_to_this_process() -> None:
    """Nothing listens on the port: every call still gets an answer, counted here, never unlimited."""
    windows = RateWindows(f"redis://127.0.0.1:{free_port()}/0")
    assert windows.shared
    assert _hits(windows, 5) == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("url", "named"),
    [("http://cache:6379", "'http'"), ("redis-cache:6379", "'redis-cache'"), ("memory", "'memory'")],
)
def test_a_storage_that_is_not_memory_or_redis_is_refused(url: str, named: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_storage") as refused:
        Settings(rate_limit_storage=url)
    assert named in str(refused.value) and "redis://" in str(refused.value)


def test_accepted_storage_urls() -> None:
    for url in (
        "memory://",
        "redis://127.0.0.1:6379/0",
        "rediss://cache:6380",
        "redis+unix:///run/redis.sock",
    ):
        assert check_storage_url(url) == url


def test_the_password_of_a_storage_url_is_never_shown() -> None:
    url = "redis://default:s3cr3t-pass@cache.internal:6379/2"
    assert without_password(url) == "redis://default:********@cache.internal:6379/2"
    assert "s3cr3t" not in str(shown_settings(Settings(rate_limit_storage=url)))
    assert without_password("redis://cache:6379/0") == "redis://cache:6379/0"
