"""The Tutor tab's browser events (`/ui_*`), called the way `make loadtest` calls them: one gradio_client session
per learner, every input a browser sends. Each learner keeps its own place; hostile input gets a clear reply."""
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import launch_app
from tutor.config import Settings
from tutor.loadtest import _percentiles, report, stored_rows
from tutor.progress import Progress
from tutor.runtime import build_tutor

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("ui-events"), max_new_tokens=16)
    tutor = build_tutor(settings, model=chat_model)
    demo, url = launch_app(tutor)
    yield tutor, url
    demo.close()


def learner(url: str) -> Client:
    return Client(url, verbose=False, _skip_components=False)  # as tutor.loadtest does


def last_reply(result) -> str:
    content = result[0][-1]["content"]
    return content if isinstance(content, str) else str(content)


def test_two_learners_keep_their_own_lesson_and_progress(served):
    tutor, url = served
    ada, bob = learner(url), learner(url)
    try:
        ada.predict("ada-browser", "Ada", None, api_name="/ui_identify")
        bob.predict("bob-browser", "Bob", None, api_name="/ui_identify")
        assert "Exercise 1" in last_reply(ada.predict([], None, "delimiters", api_name="/ui_start"))
        assert "Hint 1" in last_reply(ada.predict([], None, api_name="/ui_hint"))
        # Bob never started a lesson: his session is his own.
        assert "no exercise in progress" in last_reply(bob.predict([], None, api_name="/ui_hint"))
        assert "no exercise to submit" in last_reply(bob.predict([], None, "my answer", api_name="/ui_submit"))
        assert tutor.course.progress.hints_used("Ada", "delimiters", "summarize-review") == 1
        assert tutor.course.progress.hints_used("Bob", "delimiters", "summarize-review") == 0
    finally:
        ada.close()
        bob.close()


def test_hostile_input_through_the_browser_events_gets_clear_replies(served):
    _, url = served
    client = learner(url)
    try:
        *_, panel = client.predict("\x00" * 10, "\u202e" + "n" * 10_000 + "\x00", None, api_name="/ui_identify")
        assert "no attempts yet" in panel  # the name was cleaned and cut, not refused
        # Gradio's own components refuse what no browser can send: a lesson outside the dropdown, a malformed chat.
        with pytest.raises(AppError):
            client.predict([], None, "../../etc/passwd", api_name="/ui_start")
        with pytest.raises(AppError):
            client.predict([[[["deep"]]]] * 3, None, "text", api_name="/ui_submit")
        reply = last_reply(client.predict([], None, "x" * 300_000, api_name="/ui_submit"))
        assert "no exercise to submit" in reply
        client.predict("[" * 5_000 + "]" * 5_000, api_name="/ui_take_message")
        reply = last_reply(client.predict([], None, None, api_name="/ui_converse"))
        assert reply.strip() and "went wrong" not in reply  # a tutoring reply, not a crash
        assert "no exercise in progress" in last_reply(client.predict([], None, api_name="/ui_hint"))  # still serving
    finally:
        client.close()


def test_loadtest_counts_rows_and_reports_nearest_rank_percentiles(tmp_path):
    progress = Progress(tmp_path / "progress.sqlite3")
    progress.record_attempt("a", "l", "e", 0.5, False, 0)
    progress.record_attempt("a", "l", "other", 0.5, False, 0)
    progress.record_hint("a", "l", "e", 1)
    assert stored_rows(progress, ["a", "b"], "l", "e") == {"a": {"attempts": 1, "hints": 1},
                                                           "b": {"attempts": 0, "hints": 0}}
    figures = _percentiles([float(n) for n in range(1, 21)])
    assert figures == {"n": 20, "p50": 10.5, "p95": 19.0, "max": 20.0}
    text = report({"latency_seconds": {"hint": figures}, "question_first_update_seconds": {"n": 0},
                   "progress_rows": {"acknowledged": 2, "stored": 1, "lost": 1}, "finished": 1, "learners": 2,
                   "wall_seconds": 3.0, "errors": 0, "error_samples": [], "max_queue_position": 1})
    assert "1 lost" in text and "hint" in text
