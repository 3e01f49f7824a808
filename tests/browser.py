"""Debian's Chromium driven by Playwright, for the browser tests and `make screenshot`.

Importing this module skips the importing test module when there is no Chromium (and fails under CI=true, where
.ci/run installs it)."""
import contextlib
import os

import pytest

from tests.conftest import chromium_path

CHROMIUM = chromium_path()
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true but no Chromium found: .ci/run installs Debian's `chromium`; install it.")
    pytest.skip("no Chromium on this machine: `apt-get install chromium` to run the browser tests",
                allow_module_level=True)

# Debian's Chromium as root in a sandbox-less container, with no network but loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def app_page(browser, url: str, shot: str, *, height: int = 900, **options):
    """A page on the app once its chat box is there; a full screenshot is left at ``shot`` afterwards."""
    page = browser.new_page(viewport={"width": 1280, "height": height}, **options)
    page.goto(url)
    page.wait_for_selector("textarea", timeout=60_000)
    try:
        yield page
    finally:
        page.screenshot(path=shot, full_page=True)
        page.close()
