"""A real browser (Debian's Chromium, driven by Playwright) using the app as a learner would."""
import pytest

from tests.browser import app_page, chromium
from tests.conftest import launch_app
from tutor.config import Settings
from tutor.runtime import build_tutor

pytestmark = [pytest.mark.model, pytest.mark.browser]

@pytest.fixture(scope="module")
def app_url(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("browser-data"), max_new_tokens=24)
    demo, url = launch_app(build_tutor(settings, model=chat_model))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, app_url, tmp_path):
    with app_page(browser, app_url, str(tmp_path / "last.png")) as page:
        yield page


def send_chat(page, text: str) -> None:
    box = page.get_by_placeholder("Ask a question, or /lesson delimiters")
    box.fill(text)
    box.press("Enter")


def test_chat_message_gets_a_streamed_reply(page):
    send_chat(page, "What is a delimiter?")
    page.wait_for_selector('[data-testid="user"]', timeout=30_000)
    bot = page.locator('[data-testid="bot"]').last
    bot.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('[data-testid=\"bot\"]');"
        " return b.length && b[b.length-1].innerText.trim().split(/\\s+/).length >= 3; }", timeout=90_000)
    assert "delimiter" in page.locator('[data-testid="user"]').last.inner_text().lower()


def test_playground_setting_changes_and_runs(page, chat_model):
    page.get_by_role("tab", name="Playground").click()
    page.get_by_label("Prompt", exact=True).fill("Say hello.")
    temperature = page.get_by_label("Temperature (0 = greedy)", exact=False).locator("visible=true").first
    max_new = page.locator("input[type=number]").first  # the first slider's number box: max new tokens
    max_new.fill("6")
    max_new.press("Enter")
    page.get_by_role("button", name="Run").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('textarea')].some(t => t.disabled && t.value.trim().length > 0)",
        timeout=60_000)
    page.wait_for_selector(f"text={chat_model.info.context_window:,}-token context window", timeout=30_000)
    assert temperature is not None


def test_compare_prompts_side_by_side(page):
    page.get_by_role("tab", name="Compare prompts").click()
    page.get_by_label("Max new tokens").locator("visible=true").first
    page.get_by_role("button", name="Run both").click()
    page.wait_for_selector("text=ROUGE between the outputs", timeout=90_000)
    outputs = page.locator("textarea[disabled]")
    values = [outputs.nth(i).input_value() for i in range(outputs.count())]
    assert sum(1 for v in values if v.strip()) >= 2


def test_temperature_reshapes_the_next_token_chart(page):
    page.get_by_role("tab", name="Next token").click()
    page.get_by_role("button", name="Show next-token probabilities").click()
    page.wait_for_selector("text=Entropy of these candidates", timeout=60_000)
    first = page.get_by_text("Entropy of these candidates").inner_text()
    slider_box = page.locator("input[type=number]").first  # the temperature slider's number box
    slider_box.fill("1.9")
    slider_box.press("Enter")
    page.get_by_role("button", name="Show next-token probabilities").click()
    page.wait_for_function(f"() => !document.body.innerText.includes({first!r})", timeout=60_000)
    second = page.get_by_text("Entropy of these candidates").inner_text()

    def entropy(note: str) -> float:
        return float(note.split(":")[1].split("nats")[0].strip(" *"))

    assert entropy(second) > entropy(first)


def test_a_lesson_with_buttons_keeps_one_conversation(page):
    page.get_by_label("Your name (your progress is saved under it)").fill("Browser Learner")
    page.keyboard.press("Tab")
    page.get_by_label("Lesson").click()
    page.get_by_role("option", name="(delimiters)").click()
    page.get_by_role("button", name="Start lesson").click()
    page.wait_for_function("() => document.body.innerText.includes('Exercise 1 of')", timeout=60_000)
    page.get_by_role("button", name="Hint").click()
    page.wait_for_function("() => document.body.innerText.includes('Hint 1 of')", timeout=60_000)
    page.get_by_label("Your submission").fill("Summarise the review in the triple backticks in one sentence.\n"
                                              "```\n{input}\n```")
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_function("() => document.body.innerText.includes('Self-check')", timeout=180_000)
    text = page.locator('[data-testid="bot"]').last.inner_text()
    assert "Passed" in text and "input_delimited" in text
    # the lesson, the hint and the grade are all still in the one conversation
    assert page.locator('[data-testid="user"]').count() == 3
    page.get_by_role("button", name="Progress").click()
    page.wait_for_selector("text=summarize-review", timeout=30_000)


def test_a_course_question_gets_cited_sources(page):
    send_chat(page, "How does top-p sampling choose the next token?")
    page.wait_for_function("() => document.body.innerText.includes('Sources')", timeout=180_000)
    bot = page.locator('[data-testid="bot"]').last
    assert "Support:" in bot.inner_text() and ".md" in bot.inner_text()
    details = bot.locator("details").first
    details.locator("summary").click()
    assert len(details.inner_text()) > 80  # the passage itself unfolds under its source


def test_agent_lab_you_are_the_model_then_the_model_runs(page):
    page.get_by_role("tab", name="Agent lab").click()
    page.get_by_role("button", name="You are the model").click()
    box = page.get_by_label("Your next step")
    box.fill("Thought: The calculator does this exactly.\nAction: calculator\nAction Input: 39.90 * 0.85")
    page.get_by_role("button", name="Send my step").click()
    page.wait_for_function("() => document.body.innerText.includes('33.915')", timeout=60_000)
    assert "written by you (as the model)" in page.locator("body").inner_text()
    box.fill("Thought: I know the answer.\nFinal Answer: 33.92 EUR")
    page.get_by_role("button", name="Send my step").click()
    page.wait_for_function("() => document.body.innerText.includes('Answered after 2 step(s)')", timeout=60_000)
    page.locator("summary", has_text="Exact text sent to the model").first.click()  # the prompt unfolds
    assert "<|im_start|>system" in page.locator("details").first.inner_text()
    # The model's own run: one step, then the step limit.
    page.get_by_role("button", name="Limits and examples").click()
    steps = page.get_by_label("Most steps").locator("visible=true").first
    steps.fill("1")
    steps.press("Enter")
    page.get_by_role("button", name="Run agent").click()
    page.wait_for_function("() => document.body.innerText.includes('Step 1: written by the model')", timeout=180_000)
    page.wait_for_function("() => /(Answered|Stopped \\(steps\\)) after 1 step/.test(document.body.innerText)",
                           timeout=180_000)
