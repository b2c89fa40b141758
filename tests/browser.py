"""Debian's Chromium, driven headless by Playwright, for the console's browser tests and bench.

Playwright's own browser downloads are out of reach here (and not needed): it drives the system
browser. Without Chromium or Playwright the tests skip and say which is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def skip_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return "no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module or bench run."""
    from playwright.sync_api import sync_playwright

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
