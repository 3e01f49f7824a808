"""The OpenAI-compatible back-end's orchestration (retries, error wording, what it learns from a vLLM-style
server) on scripted HTTP answers. The real end-to-end path is tests/test_openai_model.py."""
from __future__ import annotations

import json

import httpx
import pytest

from tutor.config import Settings
from tutor.errors import GenerationError, ModelLoadError
from tutor.models import GenerationSettings, complete
from tutor.models import openai as remote
from tutor.models.openai import OpenAIChatModel, estimate_tokens, parse_target

HELLO = [{"role": "user", "content": "hi"}]
SHORT = GenerationSettings(max_new_tokens=4, temperature=0)


def sse(*pieces: str) -> bytes:
    events = [{"choices": [{"delta": {"content": p}, "index": 0}]} for p in pieces]
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


def build(routes, tmp_path, env=None, **overrides) -> OpenAIChatModel:
    """A model whose server is ``routes``: {(method, path): handler(request) -> httpx.Response}."""
    def handle(request: httpx.Request) -> httpx.Response:
        handler = routes.get((request.method, request.url.path))
        return handler(request) if handler else httpx.Response(404, json={"detail": "Not Found"})

    settings = Settings.from_env(env or {}, data_dir=tmp_path, model="openai:http://server:8000/v1", **overrides)
    client = OpenAIChatModel.client_for(settings, transport=httpx.MockTransport(handle))
    return OpenAIChatModel(settings, parse_target(settings.model), client)


MODELS = {("GET", "/v1/models"): lambda r: httpx.Response(200, json={"data": [{"id": "tutor-lora"}]})}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(remote, "_backoff", lambda attempt, retry_after: 0)


def test_base_urls():
    assert parse_target("openai:http://h:8000") == "http://h:8000/v1"
    assert parse_target("openai:http://h:8000/v1/") == "http://h:8000/v1"
    assert parse_target("openai:https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"
    with pytest.raises(ModelLoadError, match="openai:http://HOST:PORT/v1"):
        parse_target("openai:h:8000")


def test_a_refused_key_names_the_api_key_variable(tmp_path):
    routes = {("GET", "/v1/models"): lambda r: httpx.Response(401, json={"error": {"message": "bad key"}})}
    with pytest.raises(ModelLoadError, match="TUTOR_OPENAI_API_KEY"):
        build(routes, tmp_path)


def test_the_key_is_sent_but_never_shown(tmp_path):
    seen = []
    routes = {("GET", "/v1/models"): lambda r: seen.append(r.headers.get("authorization"))
              or httpx.Response(200, json={"data": [{"id": "m"}]})}
    model = build(routes, tmp_path, env={"TUTOR_OPENAI_API_KEY": "sk-secret"})
    assert seen == ["Bearer sk-secret"]
    assert "sk-secret" not in repr(Settings.from_env({"TUTOR_OPENAI_API_KEY": "sk-secret"}))
    assert "sk-secret" not in str(model.info)


def test_several_models_and_none_chosen_asks_for_the_variable(tmp_path):
    routes = {("GET", "/v1/models"): lambda r: httpx.Response(200, json={"data": [{"id": "a"}, {"id": "b"}]})}
    with pytest.raises(ModelLoadError, match="Set TUTOR_OPENAI_MODEL.*a, b"):
        build(routes, tmp_path)


def test_busy_server_is_retried_then_answers(tmp_path):
    answers = iter([httpx.Response(503), httpx.Response(429, headers={"retry-after": "1"}),
                    httpx.Response(200, content=sse("Hel", "lo"))])
    model = build({**MODELS, ("POST", "/v1/chat/completions"): lambda r: next(answers)}, tmp_path, openai_retries=2)
    assert complete(model, HELLO, SHORT) == "Hello"


def test_retries_are_bounded_and_the_error_says_busy(tmp_path):
    calls = []
    routes = {**MODELS, ("POST", "/v1/chat/completions"): lambda r: calls.append(1) or httpx.Response(503)}
    model = build(routes, tmp_path, openai_retries=2)
    with pytest.raises(GenerationError, match="busy or restarting.*3 tries"):
        complete(model, HELLO, SHORT)
    assert len(calls) == 3


def test_a_silent_server_times_out_naming_the_timeout_variable(tmp_path):
    def silent(request):
        raise httpx.ReadTimeout("no bytes", request=request)

    model = build({**MODELS, ("POST", "/v1/chat/completions"): silent}, tmp_path)
    with pytest.raises(GenerationError, match="TUTOR_OPENAI_TIMEOUT"):
        complete(model, HELLO, SHORT)


def test_an_error_event_mid_stream_is_reported(tmp_path):
    body = sse("Half")[:-len(b"data: [DONE]\n\n")] + b'data: {"error": {"message": "CUDA out of memory"}}\n\n'
    model = build({**MODELS, ("POST", "/v1/chat/completions"): lambda r: httpx.Response(200, content=body)}, tmp_path)
    with pytest.raises(GenerationError, match="CUDA out of memory"):
        complete(model, HELLO, SHORT)


def test_a_model_the_server_dropped_names_the_model_variable(tmp_path):
    routes = {**MODELS, ("POST", "/v1/chat/completions"): lambda r: httpx.Response(
        404, json={"error": {"message": "The model `tutor-lora` does not exist."}})}
    with pytest.raises(GenerationError, match="TUTOR_OPENAI_MODEL"):
        complete(build(routes, tmp_path), HELLO, SHORT)


def test_settings_reach_the_request(tmp_path):
    bodies = []
    routes = {**MODELS, ("POST", "/v1/chat/completions"): lambda r: bodies.append(json.loads(r.content))
              or httpx.Response(200, content=sse("ok"))}
    model = build(routes, tmp_path)
    stops = ("a", "b", "c", "d", "e")
    complete(model, HELLO, GenerationSettings(max_new_tokens=7, temperature=0.5, top_p=0.9, top_k=5, seed=0,
                                              frequency_penalty=0.5, presence_penalty=0.25, stop=stops))
    body = bodies[0]
    assert body["stream"] is True and body["model"] == "tutor-lora" and body["max_tokens"] == 7
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (0.5, 0.9, 5, 0)
    assert (body["frequency_penalty"], body["presence_penalty"], body["stop"]) == (0.5, 0.25, ["a", "b", "c", "d"])


def test_a_vllm_style_server_counts_tokens_and_reports_its_window(tmp_path):
    def tokenize(request):
        text = json.loads(request.content)["prompt"]
        return httpx.Response(200, json={"count": len(text.split()), "max_model_len": 2048, "tokens": []})

    routes = {("GET", "/v1/models"): lambda r: httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 2048}]}),
              ("POST", "/tokenize"): tokenize}
    model = build(routes, tmp_path)
    assert model.count_tokens("one two three") == 3 and "server" in model.info.extra["token_count"]
    assert model.info.context_window == 2048 and "max_model_len" in model.info.extra["context_window_source"]


def test_the_estimate_errs_high_on_english_and_counts_digits_and_other_scripts():
    assert estimate_tokens("") == 0
    assert estimate_tokens("Delimiters mark where the material starts.") == 14  # 42 characters / 3
    assert estimate_tokens("2024") == 4 and estimate_tokens("提示") == 4


def test_a_template_without_a_system_role_gets_the_system_text_folded_in(tmp_path):
    bodies = []

    def mistral_like(request):
        body = json.loads(request.content)
        bodies.append(body)
        if any(m["role"] == "system" for m in body["messages"]):
            return httpx.Response(400, json={"error": {"message": "Conversation roles must alternate "
                                                                  "user/assistant/user/assistant/..."}})
        return httpx.Response(200, content=sse("ok"))

    model = build({**MODELS, ("POST", "/v1/chat/completions"): mistral_like}, tmp_path)
    messages = [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": "hi"}]
    assert complete(model, messages, SHORT) == "ok" and complete(model, messages, SHORT) == "ok"
    assert len(bodies) == 3, "one refusal, then folded from the start"
    assert bodies[-1]["messages"] == [{"role": "user", "content": "You are a tutor.\n\nhi"}]
