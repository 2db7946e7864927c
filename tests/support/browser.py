"""Fixtures for tests in a real headless Chromium (Playwright) against pytest-django's
``live_server``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Set to save the screenshots the documentation shows into docs/_static/.
SCREENSHOTS_ENV = "PUBLISH_HOOKS_SCREENSHOTS"
DOCS_STATIC = Path(__file__).resolve().parents[2] / "docs" / "_static"


@pytest.fixture
def browser_page(monkeypatch) -> Iterator[Any]:
    """A page in a fresh headless Chromium, 1280 by 800."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are ordinary synchronous ones, so Django's guard is lifted here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where screenshots go: docs/_static/ when asked for, else the test's own directory."""
    if os.environ.get(SCREENSHOTS_ENV):
        DOCS_STATIC.mkdir(exist_ok=True)
        return DOCS_STATIC
    return tmp_path


def log_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base_url}/admin/")
