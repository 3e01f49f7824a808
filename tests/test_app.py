"""The app served on a free port and scripted through gradio_client, as another program would."""
import re

import pytest
from gradio_client import Client

from tests.conftest import launch_app
from tutor.config import Settings
from tutor.runtime import build_tutor

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("app-data"), max_new_tokens=24)
    tutor = build_tutor(settings, model=chat_model)
    demo, url = launch_app(tutor)
    yield tutor, Client(url, verbose=False)
    demo.close()


def test_chat_endpoint_streams_a_real_reply(served):
    _, client = served
    job = client.submit("What is a delimiter in a prompt?", api_name="/chat")
    updates = list(job)
    reply = job.result()
    reply = reply[0] if isinstance(reply, (list, tuple)) else reply
    assert len(updates) > 1, "the reply should arrive in several streamed updates"
    assert len(str(reply).split()) >= 3


def test_empty_message_gets_a_note_and_no_model_call(served, monkeypatch):
    tutor, client = served
    monkeypatch.setattr(tutor.model, "stream", lambda *a, **k: pytest.fail("the model was called"))
    reply = client.predict("   ", api_name="/chat")
    assert "empty" in str(reply).lower()


def test_a_failing_generation_is_shown_and_the_app_keeps_serving(served, monkeypatch):
    tutor, client = served
    original = tutor.model.stream

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield  # pragma: no cover

    sid = client.predict(api_name="/new_session")
    client.predict("/lesson delimiters", None, sid, api_name="/chat")
    monkeypatch.setattr(tutor.model, "stream", broken)
    # grading a prompt runs it on the (broken) model; answers to questions are extractive and need no model
    reply = client.predict("/submit Summarise this in one sentence: ```{input}```", None, sid, api_name="/chat")
    assert "something went wrong" in str(reply).lower()
    assert "[1]" in str(client.predict("What does the temperature setting do?", api_name="/chat"))
    monkeypatch.setattr(tutor.model, "stream", original)
    assert "Not yet" in str(client.predict("/submit summarize: {input}", None, sid, api_name="/chat"))


def test_playground_returns_output_rendered_prompt_and_counts(served):
    _, client = served
    output, rendered, counts = client.predict(
        "You answer in one word.", "Name a colour.", 8, 0, 50, 0.95, 1.0, 0, 0, "", -1, api_name="/playground")
    assert output.strip()
    assert "You answer in one word." in rendered and "<|im_start|>assistant" in rendered
    tutor, _ = served
    info = tutor.model.info
    assert "prompt" in counts and f"{info.max_prompt_tokens:,}" in counts and f"{info.context_window:,}" in counts


def test_playground_reports_bad_input(served):
    _, client = served
    output, _, _ = client.predict("", "   ", 8, 0, 50, 0.95, 1.0, 0, 0, "", -1, api_name="/playground")
    assert "empty" in output.lower()


def test_compare_endpoint_shows_two_outputs_side_by_side(served):
    _, client = served
    out_a, out_b, summary = client.predict("summarize: {input}", "One sentence summary:\n```{input}```",
                                           "The fan is quiet but the base is flimsy.", 16, 0, api_name="/compare")
    assert out_a.strip() and out_b.strip()
    assert "prompt tokens" in summary and "ROUGE between the outputs" in summary


def test_tokens_and_next_token_endpoints(served):
    _, client = served
    view, count, table, other, other_count = client.predict("Hello world", api_name="/tokens")
    assert "2 tokens" in count and "Llama 2" in other_count
    chart, note, _ = client.predict("The capital of France is", 1.0, 0, 1.0, api_name="/next_token")
    assert "Entropy" in note and chart


def test_about_panel_shows_the_shipped_adapters_figures(tmp_path):
    from tutor.config import ROOT
    from tutor.ui.tabs.about import adapter_figures

    text = adapter_figures(ROOT / "adapters" / "smollm2-tutor")
    figures = __import__("json").loads((ROOT / "adapters" / "smollm2-tutor" / "eval.json").read_text())
    assert f"{figures['adapter']['loss']:.3f}" in text and f"{figures['base']['rougeL']:.3f}" in text
    assert "No evaluation figures" in adapter_figures(tmp_path)


def test_an_api_session_follows_a_lesson_over_several_calls(served):
    _, client = served
    sid = client.predict(api_name="/new_session")
    assert "Exercise 1 of" in client.predict("/lesson delimiters", None, sid, api_name="/chat")
    assert "Hint 1 of" in client.predict("/hint", None, sid, api_name="/chat")
    graded = client.predict("/submit summarize this: {input}", None, sid, api_name="/chat")  # the real model runs it
    assert "Not yet" in graded and "input_delimited" in graded
    state = client.predict(sid, api_name="/session")
    assert state["lesson"] == "delimiters" and state["exercise"] == "summarize-review" and not state["solved"]
    assert any("delimiters" in d for d in state["last_failed"]) and state["turns"] == 3
    stuck = client.predict("I'm stuck", None, sid, api_name="/chat")  # aimed at what the attempt missed
    assert "delimiters" in stuck and "?" in stuck and "**Next:**" in stuck
    # the server's copy of the conversation resolves a follow-up when the client sends no history
    client.predict("what is few-shot prompting?", None, sid, api_name="/chat")
    follow = client.predict("example please", None, sid, api_name="/chat")
    cited = re.findall(r"<summary>\[\d\] (\S+\.md)", follow)
    assert cited and set(cited) <= {"in-context-learning.md", "prompting-principles.md"}, cited  # still few-shot
    assert "example" in follow.lower()
    # a call without a session id is a one-off: it knows nothing of the lesson
    assert "no exercise" in client.predict("/hint", api_name="/chat").lower()


@pytest.mark.parametrize("bad", ["nope", "A" * 32, "x" * 100_000, "../../etc/passwd", "<script>"])
def test_unknown_or_garbage_session_ids_get_a_clear_message(served, bad):
    _, client = served
    reply = client.predict("/hint", None, bad, api_name="/chat")
    assert "Session problem" in reply and "empty session_id" in reply
    assert "error" in client.predict(bad, api_name="/session")
