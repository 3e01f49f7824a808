"""The Instructor tab in a real browser (Debian's Chromium through Playwright): nothing without the password,
the class's figures, the chart and the CSV download with it."""
import pytest

from tests.browser import app_page, chromium
from tests.conftest import launch_app
from tutor.config import ROOT, Settings
from tutor.runtime import build_course
from tutor.tutor import Tutor

pytestmark = [pytest.mark.model, pytest.mark.browser]

PASSWORD = "browser-class s3cret"
EVERY = ["name-delimiter", "why-delimit"]


@pytest.fixture(scope="module")
def app_url(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("instructor-browser"), max_new_tokens=16,
                                 lessons_dir=ROOT / "tests" / "data" / "class_lessons", instructor_password=PASSWORD)
    course = build_course(settings, chat_model)
    for _ in range(3):
        course.progress.record_attempt("stuck-sam", "class-basics", "name-delimiter", 0.1, False, 2,
                                       ["contains (answer)"], EVERY)
    course.progress.record_attempt("quick-quinn", "class-basics", "name-delimiter", 1.0, True, 0, [], EVERY)
    demo, url = launch_app(Tutor(settings, chat_model, course=course))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, app_url, tmp_path):
    with app_page(browser, app_url, str(tmp_path / "last.png"), height=1200, accept_downloads=True) as page:
        page.get_by_role("tab", name="Instructor").click()
        yield page


def test_nothing_is_shown_without_the_password(page):
    page.get_by_role("button", name="Show the class").click()
    page.wait_for_selector("text=Instructor password required", timeout=30_000)
    page.get_by_label("Instructor password").fill("guess")
    page.get_by_role("button", name="Export CSV").click()
    page.wait_for_selector("text=Wrong instructor password", timeout=30_000)
    body = page.inner_text("body")
    assert "stuck-sam" not in body and "quick-quinn" not in body and "class-progress" not in body


def test_the_instructor_sees_the_class_and_downloads_the_csv(page, tmp_path):
    page.get_by_label("Instructor password").fill(PASSWORD)
    page.get_by_role("button", name="Show the class").click()
    page.wait_for_selector("text=4 attempt(s)", timeout=30_000)
    page.wait_for_function("() => document.body.innerText.includes('stuck-sam')", timeout=30_000)
    page.wait_for_selector(".vega-embed svg g.mark-rect path", state="attached", timeout=30_000)  # bars drawn

    page.get_by_role("button", name="Export CSV").click()
    link = page.get_by_test_id("download-link").first
    link.wait_for(state="attached", timeout=30_000)
    assert "class-progress-all-" in link.get_attribute("download")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "export.csv"
    info.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("learner,lesson,exercise,time,passed,score,failed checks")
    assert len(lines) == 5 and sum("stuck-sam" in line for line in lines) == 3
