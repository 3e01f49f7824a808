"""The app served on a free port and scripted through gradio_client, as another program would."""
import pytest
from gradio_client import Client

from tests.conftest import free_port
from tutor import ui
from tutor.config import Settings
from tutor.runtime import build_tutor

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("app-data"), max_new_tokens=24)
    tutor = build_tutor(settings, model=chat_model)
    demo = ui.build_app(tutor)
    port = free_port()
    ui.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield tutor, Client(f"http://127.0.0.1:{port}/", verbose=False)
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

    monkeypatch.setattr(tutor.model, "stream", broken)
    # an on-topic question, so the readings answerer does call the (broken) model
    reply = client.predict("What does the temperature setting do?", api_name="/chat")
    assert "something went wrong" in str(reply).lower()
    monkeypatch.setattr(tutor.model, "stream", original)
    assert len(str(client.predict("Name one prompting tactic.", api_name="/chat"))) > 5


def test_playground_returns_output_rendered_prompt_and_counts(served):
    _, client = served
    output, rendered, counts = client.predict(
        "You answer in one word.", "Name a colour.", 8, 0, 50, 0.95, 1.0, 0, 0, "", -1, api_name="/playground")
    assert output.strip()
    assert "You answer in one word." in rendered and "<|im_start|>assistant" in rendered
    assert "prompt" in counts and "2,048" in counts and "8,192" in counts


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
