"""The README's screenshot, taken from the real app (the embedded default with its adapter) in Debian's Chromium.

`make screenshot` runs this with SCREENSHOT_TO=docs/screenshot.png; in the suite it goes to a temporary folder,
so the test also proves a learner can start a lesson and get a cited answer in the browser."""
import os
import struct
from pathlib import Path

import pytest

from tests.browser import app_page, chromium
from tests.conftest import MODEL_CACHE_DATA_DIR, launch_app
from tutor.config import Settings
from tutor.runtime import build_tutor

pytestmark = [pytest.mark.model, pytest.mark.browser]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", header[16:24])


def test_a_learner_starts_a_lesson_and_asks_a_question(tmp_path):
    target = Path(os.environ.get("SCREENSHOT_TO") or tmp_path / "screenshot.png")
    # The app as `make run` serves it: the default model and adapter, the real readings and lessons.
    settings = Settings.from_env({}, data_dir=MODEL_CACHE_DATA_DIR)
    tutor = build_tutor(settings)
    demo, url = launch_app(tutor)
    try:
        with chromium() as browser, app_page(browser, url, str(tmp_path / "last.png"), height=860) as page:
            page.get_by_label("Your name (your progress is saved under it)").fill("Ada")
            page.get_by_label("Lesson").click()
            page.get_by_role("option", name="Delimiters (delimiters)").click()
            page.get_by_role("button", name="Start lesson").click()
            page.wait_for_selector('[data-testid="bot"]', timeout=60_000)
            box = page.get_by_placeholder("Ask a question, or /lesson delimiters")
            box.fill("Why do delimiters help against prompt injection?")
            box.press("Enter")
            # The cited answer: its sources line ends the reply.
            page.wait_for_function(
                "() => { const b = document.querySelectorAll('[data-testid=\"bot\"]');"
                " return b.length >= 2 && /\\[1\\]/.test(b[b.length-1].innerText); }", timeout=120_000)
            page.wait_for_timeout(500)  # the last chunk painted
            # The question at the top of the chat, the answer below it.
            page.locator('[data-testid="user"]').last.evaluate(
                """el => { let box = el.parentElement;
                           while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
                           if (box) box.scrollTop += el.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
                           window.scrollTo(0, 0); }""")
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target))
    finally:
        demo.close()
    width, height = png_size(target)
    assert (width, height) == (1280, 860) and target.stat().st_size > 30_000  # a page, not a blank
