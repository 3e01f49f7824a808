"""Hostile requests against a running app, as a script on the internet would send them.

Each test sends one attack to the public API of a real app (the embedded model, real Chroma and SQLite) and
asserts three things: a clear message that says what to send instead, bounded work (the prompt that reaches the
model fits its context window; memory stays bounded), and that the next learner is still answered.
"""
import json
import threading
import time

import httpx
import pytest
from gradio_client import Client

from tests.conftest import launch_app
from tutor.config import Settings
from tutor.models.budget import TRUNCATION_MARK
from tutor.models.hf.probe import MAX_RESPONSE_TOKENS
from tutor.runtime import build_tutor
from tutor.ui.common import BadInput, plain_history, text_of

pytestmark = pytest.mark.model

# Growth of the test process's resident memory allowed per attack. The reported bugs grew it by 1.4 to 20 GB.
# The legitimate worst case is one prefill of TUTOR_MAX_PROMPT_TOKENS = 2,048 tokens: attention scores of
# 9 heads x 2,048^2 x 4 bytes = 151 MB per layer, held twice (scores and softmax), plus a KV cache of
# 30 layers x 2 x 3 heads x 64 x 2,048 x 4 bytes = 94 MB: ~400 MB, and the allocator keeps its high-water mark.
MAX_GROWTH_MB = 1_000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.fixture(scope="module")
def app(chat_model, tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("hostile"), max_new_tokens=16,
                                 queue_per_client=2)
    assert chat_model.info.max_prompt_tokens == settings.max_prompt_tokens
    tutor = build_tutor(settings, model=chat_model)
    demo, url = launch_app(tutor)
    yield tutor, demo, url, Client(url, verbose=False)
    demo.close()


def still_serving(client: Client) -> None:
    reply = client.predict("/lessons", api_name="/chat")
    assert "delimiters" in str(reply), reply


def answer(result) -> str:
    return str(result[0] if isinstance(result, (list, tuple)) else result)


def raw_call(url: str, api_name: str, data_json: str) -> str:
    """Call an endpoint with a JSON body written by hand (NaN, lone surrogates: what gradio_client refuses to
    encode, a script can still send), and return the event stream's text."""
    response = httpx.post(f"{url}gradio_api/call/{api_name}", content='{"data": ' + data_json + "}",
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 200, response.text
    event = json.loads(response.text)["event_id"]
    return httpx.get(f"{url}gradio_api/call/{api_name}/{event}", timeout=300).text


# -- request shapes ------------------------------------------------------------------------------------------

def test_deeply_nested_message_is_refused_at_once(app):
    _, _, _, client = app
    nested = "x"
    for _ in range(400):  # JSON parsers cap nesting near 1,000; 400 levels is what a request can carry
        nested = [nested]
    started = time.perf_counter()
    reply = answer(client.predict(nested, api_name="/chat"))
    assert "could not read that message" in reply and "nested" in reply
    assert time.perf_counter() - started < 30  # was 36.6 s for 55 bytes (exponential recursion)
    still_serving(client)


def test_text_of_is_linear_however_deep_or_wide():
    deep = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(BadInput, match="nested"):
        text_of(deep, 100)
    with pytest.raises(BadInput, match="at most"):
        text_of([{"type": "text", "text": "a"}] * 10_000, 100)
    assert text_of([{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}], 100) == "hello\nthere"
    assert text_of("\ud800 lone surrogate", 100) == "? lone surrogate"
    assert len(text_of("y" * 1_000_000, 20)) == 20
    history = [{"role": "user", "content": "q"}, {"role": "system", "content": "ignored"}, "junk", 7]
    assert plain_history(history * 10_000, 50) == [{"role": "user", "content": "q"}] * 25  # the last 100 items
    with pytest.raises(BadInput, match="history"):
        plain_history("not a list", 10)


def test_huge_history_and_message_are_cut_to_the_window(app):
    tutor, _, _, client = app
    before = rss_mb()
    history = [{"role": "user", "content": "tell me more " * 2_000}] * 200
    reply = answer(client.predict("你好🙂" * 50_000, history, api_name="/chat"))
    assert "longer than 20,000 characters" in reply
    assert rss_mb() - before < MAX_GROWTH_MB
    still_serving(client)


def test_lone_surrogates_and_control_characters_get_a_real_reply(app):
    _, _, url, client = app
    stream = raw_call(url, "chat", '["/lesson \\ud800\\u0000\\u001b[31m", null, ""]')
    assert "no lesson" in stream.lower() and "event: error" not in stream
    still_serving(client)


# -- compare, playground and the instruments -------------------------------------------------------------

def test_compare_refuses_repeated_placeholders(app):
    _, _, _, client = app
    many = "{input}" * 2_500  # 17.5 KB of placeholders used to become a 10 MB prompt
    out_a, out_b, summary = client.predict(many, "Summarise {input}", "m" * 4_000, 8, 0, api_name="/compare")
    assert "Cannot run" in summary and "at most 4 times" in summary and not out_a and not out_b
    still_serving(client)


def test_compare_fits_the_longest_allowed_expansion_to_the_window(app):
    tutor, _, _, client = app
    before = rss_mb()
    material = "The fan is quiet. " * 1_200  # 21,600 characters, cut to 20,000 at the edge
    _, _, summary = client.predict("{input}\n{input}\n{input}\n{input}", "Summarise: {input}", material, 8, 0,
                                   api_name="/compare")
    tokens = [int(row.split("|")[2]) for row in summary.splitlines() if row.startswith(("| A", "| B"))]
    assert tokens and all(t <= tutor.model.info.max_prompt_tokens for t in tokens), summary
    assert rss_mb() - before < MAX_GROWTH_MB


def test_playground_long_system_message_is_cut_not_sent_whole(app):
    tutor, _, _, client = app
    output, rendered, counts = client.predict("Be brief. " * 20_000, "Name a colour.", 4, 0, 50, 0.95, 1.0, 0, 0, "",
                                              -1, api_name="/playground")
    assert TRUNCATION_MARK.strip() in rendered and "Name a colour." in rendered
    assert tutor.model.count_tokens(rendered) <= tutor.model.info.max_prompt_tokens
    assert "longer than the token budget" in counts


@pytest.mark.parametrize("field, value, expected", [
    (10, "NaN", "Seed must be a number"),
    (10, "Infinity", "Seed must be a number"),
    (10, "1e30", "Seed must be a number"),
    (3, "NaN", "Temperature must be a number"),
    (9, json.dumps("\n".join(["stop"] * 100)), "at most 8 stop sequences"),
    (9, json.dumps("s" * 500), "at most 64 characters"),
])
def test_playground_bad_settings_get_a_clear_message(app, field, value, expected):
    _, _, url, _ = app
    args = ['""', '"Name a colour."', "4", "0.0", "50", "0.95", "1.0", "0.0", "0.0", '""', "-1"]
    args[field] = value
    stream = raw_call(url, "playground", "[" + ", ".join(args) + "]")
    assert "Cannot run" in stream and expected in stream, stream


def test_sliders_refuse_values_past_their_range(app):
    _, _, _, client = app
    with pytest.raises(Exception, match="greater than maximum value 1024"):
        client.predict("", "Name a colour.", 10**9, 0, 50, 0.95, 1.0, 0, 0, "", -1, api_name="/playground")


def test_instruments_take_huge_text_without_blowing_up(app):
    tutor, _, _, client = app
    before = rss_mb()
    text = "Tokens cost memory. " * 2_000  # 40 KB: used to take ~60 s and +1.9 GB
    chart, note, _ = client.predict(text, 1.0, 0, 1.0, api_name="/next_token")
    assert "Entropy" in note and chart
    _, count, table, _, _ = client.predict(text, api_name="/tokens")
    assert "first 4,000 characters" in count
    heatmap, scored = client.predict(text, "Yes.", api_name="/logprob")
    assert "Total log-probability" in scored and heatmap
    _, too_long = client.predict("Q", text, api_name="/logprob")
    assert f"over {MAX_RESPONSE_TOKENS:,} tokens" in too_long
    assert rss_mb() - before < MAX_GROWTH_MB
    assert "Temperature must be a number" in raw_call(app[2], "next_token", '["Hi", NaN, 0, 1.0, 0.0, 1.0]')
    still_serving(client)


# -- the server itself -----------------------------------------------------------------------------------------

def test_every_model_event_shares_one_concurrency_group(app):
    tutor, demo, _, _ = app
    model_events = {"chat", "playground", "next_token", "step_pick", "step_sample", "compare", "logprob"}
    groups = {fn.api_name: fn.concurrency_id for fn in demo.fns.values() if fn.api_name in model_events}
    assert set(groups) == model_events and set(groups.values()) == {"model"}
    assert all(fn.concurrency_limit == tutor.settings.concurrency for fn in demo.fns.values()
               if fn.concurrency_id == "model")


def test_uploads_are_capped(app):
    _, _, url, client = app
    big = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.txt", b"x" * 2_000_000)}, timeout=60)
    assert big.status_code == 413
    small = httpx.post(f"{url}gradio_api/upload", files={"files": ("small.txt", b"x" * 1_000)}, timeout=60)
    assert small.status_code == 200
    still_serving(client)


def test_no_public_reload_and_no_paths_in_replies(app):
    _, demo, url, client = app
    assert "reload_lessons" not in {fn.api_name for fn in demo.fns.values()}
    tutor = app[0]
    reply = answer(client.predict("/reload", api_name="/chat"))
    assert "do not know the command" in reply and str(tutor.settings.lessons_dir) not in reply


def test_one_client_cannot_fill_the_queue(app):
    """queue_per_client=2 here: a third waiting request from the same session is refused with a message, while
    another session's request is accepted and answered."""
    _, demo, url, client = app
    fn_index = next(i for i, fn in demo.fns.items() if fn.api_name == "playground")
    body = {"data": ["", "Count slowly from one to fifty.", 48, 0.0, 50, 0.95, 1.0, 0.0, 0.0, "", -1],
            "fn_index": fn_index, "session_hash": "greedy-script", "event_data": None, "trigger_id": None}
    replies = [httpx.post(f"{url}gradio_api/queue/join", json=body, timeout=60) for _ in range(6)]
    refused = [r for r in replies if r.status_code == 503]
    assert refused and all("requests waiting" in r.json()["detail"] for r in refused), [r.text for r in replies]
    assert sum(r.status_code == 200 for r in replies) >= 2  # its first requests were taken
    still_serving(client)


def test_concurrent_learners_are_all_answered_during_an_attack(app):
    _, _, url, _ = app
    results, errors = [], []

    def learner(n):
        try:
            results.append(answer(Client(url, verbose=False).predict("/lessons", api_name="/chat")))
        except Exception as exc:
            errors.append(exc)

    attack = threading.Thread(target=lambda: Client(url, verbose=False).predict(
        "x" * 300_000, api_name="/chat"))
    attack.start()
    threads = [threading.Thread(target=learner, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads + [attack]:
        t.join(timeout=300)
    assert not errors and len(results) == 4 and all("delimiters" in r for r in results)


def test_nan_and_infinity_in_raw_json_get_a_clear_reply(app):
    _, _, url, client = app
    body = '{"data": [NaN, Infinity, NaN]}'  # what a script's JSON encoder writes for float("nan") and float("inf")
    response = httpx.post(f"{url}gradio_api/call/chat", content=body, headers={"content-type": "application/json"},
                          timeout=60)
    assert response.status_code == 200, response.text
    event = json.loads(response.text)["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/chat/{event}", timeout=120).text
    assert "could not read that message" in stream and "Send the message as text" in stream
    still_serving(client)
