"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright's async API.

The nodes run in the test's event loop (``tests.support.federation``); Playwright's async API
shares that loop, so the browser and the servers take turns without threads.
Browser tests skip, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("BARNPLAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: run .ci/install-browser (apt-get install chromium)"
        )
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="Playwright is not installed (pip install -e '.[dev]')"
    )
    async with playwright_api.async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
