"""``/docs`` in a real browser (Debian's Chromium through Playwright): Swagger UI renders every operation of
``/openapi.json`` and loads nothing from anywhere but the server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shared import under_ci

CHROMIUM = Path("/usr/bin/chromium")

# CI installs Debian's chromium (.ci/run); elsewhere the test skips without it.
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not under_ci(), reason="Debian's chromium package is not installed"
    ),
]


def test_the_docs_page_shows_every_operation(machinery_server: Callable[[], str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = machinery_server()
    with urllib.request.urlopen(f"{server}/openapi.json") as response:
        document = json.load(response)
    expected = sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{server}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            shown = page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent.trim(),
                    b.querySelector('.opblock-summary-path').getAttribute('data-path'),
                ])""",
            )
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    assert sorted((method, path) for method, path in shown) == expected
    assert requested and all(url.startswith(server) or url.startswith("data:") for url in requested), (
        requested
    )
