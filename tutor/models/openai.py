"""The chat-model interface over an OpenAI-compatible server: ``TUTOR_MODEL=openai:<base_url>``.

Works with any server that speaks ``POST /v1/chat/completions`` with server-sent events: vLLM (including its
LoRA serving: name the adapter in TUTOR_OPENAI_MODEL), TGI, Ollama, llama.cpp's server, ``transformers serve``.

Why ``httpx`` and not the ``openai`` package: httpx is already installed (gradio depends on it), so a remote
model adds no dependency; beyond the two standard endpoints we probe non-OpenAI ones (vLLM's ``/tokenize`` and
``max_model_len``) that the openai client does not model; and the retry and timeout policy stays ours, so each
failure can name the TUTOR_* variable that fixes it.

What the tutor cannot know about a remote model, and what it does instead:

- the chat template: ``render`` shows the conversation as a plain transcript (prompts/plain_chat.md); the server
  applies its own template. ``info.extra["render"]`` says so.
- the tokenizer: counted by the server's ``/tokenize`` when it has one (vLLM, llama.cpp's server), otherwise
  estimated (see ``estimate_tokens``). ``info.extra["token_count"]`` says which.
- the context window: the server's ``max_model_len`` when it reports one (vLLM), otherwise TUTOR_OPENAI_CONTEXT.
- stop sequences: sent to the server and also enforced here, because some servers ignore them
  (``transformers serve`` 5.x does); the stream is closed at the first stop, which ends the generation.
- logits: no instrument tabs (next-token chart, tokenizer view, log-probabilities): this class does not
  implement the Inspector, so the UI leaves those tabs out.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from tutor import prompts
from tutor.config import Settings
from tutor.errors import GenerationError, ModelLoadError
from tutor.models import budget
from tutor.models.chat_format import fold_system
from tutor.models.protocol import (
    GenerationSettings,
    Message,
    ModelInfo,
    prompt_budget,
    until_stop,
)

log = logging.getLogger(__name__)

PREFIX = "openai:"
CONNECT_TIMEOUT_S = 5.0  # a server on the same network accepts a connection in milliseconds; 5 s means it is down
PROBE_TIMEOUT_S = 15.0  # /models and /tokenize answer without touching the model
RETRY_STATUSES = (429, 502, 503, 504)  # overloaded or restarting: worth another try; 500 is usually a real bug
MAX_BACKOFF_S = 8.0
MAX_STOPS_SENT = 4  # OpenAI's limit on `stop`; any further stop sequences are enforced here only
# Sampling fields outside OpenAI's schema. vLLM and llama.cpp honour them; `transformers serve` answers 422 to
# them, and then they are dropped for the rest of the process (the tutor's defaults still work, less shaped).
EXTRA_FIELDS = ("top_k", "repetition_penalty")
# How a server says its chat template has no system role (Mistral-7B-Instruct v0.1/v0.2 on vLLM: "Conversation
# roles must alternate user/assistant/..."). Then the system text is folded into the first user turn, as the
# transformers back-end and training do (tutor.models.chat_format), and kept folded.
SYSTEM_ROLE_REFUSALS = ("roles must alternate", "system role", "system message", "role 'system'", 'role "system"')


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` when the server cannot count them: ASCII letters and punctuation at 3 characters per
    token, each digit one token, each other character two.

    Measured against SmolLM2's tokenizer (true tokens / estimate): English readings 4.3-4.5 characters per
    token, so the estimate is 1.4-1.5x high; Python and JSON 3.7 (1.2x high); German 2.8 (0.95-1.0);
    Chinese 0.6 characters per token (about 1.15x high); long numbers 1 digit per token (1.0). Erring high only
    trims history a little early; erring low would overflow the server's context window."""
    digits = sum(c.isdigit() for c in text)
    other = sum(not c.isascii() for c in text)
    return -(-(len(text) - digits - other) // 3) + digits + 2 * other


def parse_target(value: str) -> str:
    """The API base URL from ``openai:<url>``: a bare host gets ``/v1``, a URL with a path is used as given."""
    url = value.removeprefix(PREFIX).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelLoadError(f"TUTOR_MODEL={value!r} is not a server URL: write it as openai:http://HOST:PORT/v1 "
                             "(the base URL of an OpenAI-compatible API).")
    return url if parts.path else url + "/v1"


class OpenAIChatModel:
    def __init__(self, settings: Settings, base_url: str, client: httpx.Client):
        self.base_url = base_url
        self.root_url = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))  # vLLM's /tokenize sits at the root
        self.client = client
        self.retries = settings.openai_retries
        self.timeout_s = settings.openai_timeout
        self.send_extras = True
        self.folds_system = False
        entry = self._choose_model(settings, self._list_models())
        self.model_name = entry["id"]
        self.server_tokenizer = self._probe_tokenizer()
        window, window_source = settings.openai_context, "TUTOR_OPENAI_CONTEXT (the server does not report one)"
        if isinstance(entry.get("max_model_len"), int):
            window, window_source = entry["max_model_len"], "the server (max_model_len)"
        self.info = ModelInfo(
            name=self.model_name, adapter=None, device="remote", dtype="server-side", quantization=None,
            context_window=window, max_prompt_tokens=min(window, settings.max_prompt_tokens), backend="openai",
            extra={"base_url": base_url, "context_window_source": window_source,
                   "token_count": "the server's /tokenize" if self.server_tokenizer else
                   "estimated: 3 ASCII characters, 1 digit or half a non-ASCII character per token",
                   "render": "a plain transcript; the server applies the model's own chat template",
                   "instruments": "none: the server's logits are not available"})

    @classmethod
    def from_settings(cls, settings: Settings) -> "OpenAIChatModel":
        base_url = parse_target(settings.model)
        if settings.adapter not in ("auto", "none"):
            log.warning("TUTOR_ADAPTER=%s is ignored with an OpenAI-compatible server: serve the adapter there "
                        "(vLLM: --lora-modules) and name it in TUTOR_OPENAI_MODEL.", settings.adapter)
        return cls(settings, base_url, cls.client_for(settings))

    @staticmethod
    def client_for(settings: Settings, **options) -> httpx.Client:
        """One pooled, thread-safe client per model: the key in its headers, the timeouts from the settings."""
        headers = {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
        return httpx.Client(headers=headers, timeout=httpx.Timeout(settings.openai_timeout, connect=CONNECT_TIMEOUT_S),
                            **options)

    # -- what the server offers (once, at load) --------------------------------------------------------
    def _list_models(self) -> list[dict]:
        url = f"{self.base_url}/models"
        for attempt in range(self.retries + 1):  # replicas often start together with their model server
            try:
                response = self._send("GET", url, timeout=PROBE_TIMEOUT_S)
            except httpx.TransportError as exc:  # timeouts included
                if attempt < self.retries:
                    time.sleep(_backoff(attempt + 1, None))
                    continue
                raise ModelLoadError(f"No model server answers at {self.base_url} ({type(exc).__name__}, "
                                     f"{attempt + 1} tries). Start it, or fix the URL in TUTOR_MODEL=openai:<base_url>."
                                     ) from exc
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                break
            time.sleep(_backoff(attempt + 1, response.headers.get("retry-after")))
        if response.status_code in (401, 403):
            raise ModelLoadError(f"The model server at {self.base_url} refused the request (HTTP "
                                 f"{response.status_code}): set TUTOR_OPENAI_API_KEY to a key it accepts.")
        if response.status_code != 200:
            raise ModelLoadError(f"{url} answered HTTP {response.status_code}: is TUTOR_MODEL=openai:<base_url> "
                                 "the base of an OpenAI-compatible API? It usually ends in /v1.")
        try:
            return [m for m in response.json()["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (ValueError, KeyError, TypeError):
            raise ModelLoadError(f"{url} did not answer with an OpenAI model list: is TUTOR_MODEL the base URL "
                                 "of an OpenAI-compatible API?") from None

    @staticmethod
    def _choose_model(settings: Settings, listed: list[dict]) -> dict:
        names = [m["id"] for m in listed]
        wanted = settings.openai_model.strip()
        if wanted:
            if listed and wanted not in names:
                raise ModelLoadError(f"TUTOR_OPENAI_MODEL={wanted!r} is not served at {settings.model}: the "
                                     f"server lists {', '.join(names)}.")
            return next((m for m in listed if m["id"] == wanted), {"id": wanted})
        if len(listed) == 1:
            return listed[0]
        raise ModelLoadError("Set TUTOR_OPENAI_MODEL to the model to use: the server at "
                             f"{settings.model} lists {', '.join(names) or 'no models'}.")

    def _probe_tokenizer(self) -> bool:
        """Whether ``POST /tokenize`` counts tokens here: vLLM takes ``prompt``, llama.cpp's server ``content``."""
        count = self._server_count("Hello world")
        return count is not None and 1 <= count <= 8

    def _server_count(self, text: str) -> int | None:
        body = {"model": self.model_name, "prompt": text, "content": text, "add_special_tokens": False}
        try:
            response = self._send("POST", f"{self.root_url}/tokenize", json=body, timeout=PROBE_TIMEOUT_S)
            data = response.json() if response.status_code == 200 else {}
        except (httpx.TransportError, ValueError):
            return None
        if isinstance(data, dict) and isinstance(data.get("count"), int):
            return data["count"]
        tokens = data.get("tokens") if isinstance(data, dict) else None
        return len(tokens) if isinstance(tokens, list) else None

    # -- prompt text -----------------------------------------------------------------------------------
    def render(self, messages: list[Message]) -> str:
        return prompts.render("plain_chat", messages=messages)

    def count_tokens(self, text: str) -> int:
        if self.server_tokenizer:
            count = self._server_count(text)
            if count is not None:
                return count
        return estimate_tokens(text)

    def clip_tokens(self, text: str, max_tokens: int) -> str:
        """The beginning of ``text`` that counts at most ``max_tokens``. Without the tokenizer, cut in proportion
        and 10% deeper (tokens are not spread evenly over characters) until it counts in; each pass shortens."""
        text = budget.precut(text, max_tokens)
        while text and (total := self.count_tokens(text)) > max_tokens:
            text = text[:int(len(text) * max_tokens / total * 0.9)]
        return text

    def fit_messages(self, messages: list[Message], reserve: int) -> tuple[list[Message], bool]:
        return budget.fit_messages(messages, prompt_budget(self.info, reserve),
                                   count=lambda ms: self.count_tokens(self.render(ms)),
                                   count_text=self.count_tokens, clip=self.clip_tokens)

    # -- generation ------------------------------------------------------------------------------------
    def _body(self, messages: list[Message], settings: GenerationSettings) -> dict:
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        body = {"model": self.model_name, "stream": True, "max_tokens": settings.max_new_tokens,
                "messages": fold_system(messages) if self.folds_system else messages,
                "temperature": settings.temperature, "top_p": 1.0 if settings.greedy else settings.top_p}
        if settings.stop:
            body["stop"] = list(settings.stop[:MAX_STOPS_SENT])
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.frequency_penalty:
            body["frequency_penalty"] = settings.frequency_penalty
        if settings.presence_penalty:
            body["presence_penalty"] = settings.presence_penalty
        if self.send_extras and not settings.greedy and settings.top_k:
            body["top_k"] = settings.top_k
        if self.send_extras and settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = settings.repetition_penalty
        return body

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        with self._completion(messages, settings) as response:
            # ending early (a stop sequence) leaves the block, which closes the connection and ends the server's
            # generation
            yield from until_stop(self._deltas(response), settings.stop)

    @contextmanager
    def _completion(self, messages: list[Message], settings: GenerationSettings):
        """An open 200 streaming response. Retries what is worth retrying, with backoff; never after text came."""
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        while True:
            try:
                response = self._send("POST", url, json=self._body(messages, settings), stream=True)
            except httpx.ReadTimeout as exc:
                raise GenerationError(self._timeout_message()) from exc
            except httpx.TransportError as exc:  # refused, reset, or no connection within CONNECT_TIMEOUT_S
                if attempt < self.retries:
                    attempt += 1
                    time.sleep(_backoff(attempt, None))
                    continue
                raise GenerationError(f"The model server at {self.base_url} cannot be reached "
                                      f"({type(exc).__name__}, {attempt + 1} tries). Check that it is running and "
                                      "that TUTOR_MODEL=openai:<base_url> points at it.") from exc
            if response.status_code == 200:
                break
            detail = _error_detail(response)
            response.close()
            if response.status_code in (400, 422) and self.send_extras and any(f in detail for f in EXTRA_FIELDS):
                log.info("The model server rejects %s; sending standard OpenAI fields only.", ", ".join(EXTRA_FIELDS))
                self.send_extras = False
                continue
            if (response.status_code in (400, 422) and not self.folds_system and messages[:1] and messages[0]["role"] == "system"
                    and any(refusal in detail.lower() for refusal in SYSTEM_ROLE_REFUSALS)):
                log.info("The model's chat template has no system role; folding it into the first user turn.")
                self.folds_system = True
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                time.sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            raise GenerationError(self._status_message(response.status_code, detail))
        try:
            yield response
        finally:
            response.close()

    def _deltas(self, response: httpx.Response) -> Iterator[str]:
        """The text pieces of a server-sent-event stream of chat completion chunks."""
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, `: keep-alive` comments, `event:` lines
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise GenerationError(f"The model server sent a malformed event: {data[:200]!r}") from None
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise GenerationError(f"The model server failed while writing: {_message_of(chunk['error'])}")
                for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else []:
                    piece = (choice.get("delta") or {}).get("content")
                    if isinstance(piece, str) and piece:
                        yield piece
        except httpx.ReadTimeout as exc:
            raise GenerationError(self._timeout_message()) from exc
        except httpx.TransportError as exc:
            raise GenerationError(f"The model server at {self.base_url} dropped the connection mid-reply "
                                  f"({type(exc).__name__}). Try again; if it repeats, check the server's log.") from exc

    def _send(self, method: str, url: str, *, stream: bool = False, timeout: float | None = None, **kwargs):
        request = self.client.build_request(method, url, timeout=timeout or httpx.USE_CLIENT_DEFAULT, **kwargs)
        return self.client.send(request, stream=stream)

    def _timeout_message(self) -> str:
        return (f"The model server at {self.base_url} sent nothing for {self.timeout_s} s. It may be overloaded: "
                "try again, add replicas, or raise TUTOR_OPENAI_TIMEOUT.")

    def _status_message(self, status: int, detail: str) -> str:
        lowered = detail.lower()
        if status in (401, 403):
            return f"The model server refused the request (HTTP {status}): set TUTOR_OPENAI_API_KEY to a key it accepts."
        if "context length" in lowered or "context window" in lowered:
            return (f"The conversation is longer than the model server accepts ({detail}). Set TUTOR_OPENAI_CONTEXT "
                    "to the server's real context window.")
        if status == 404 or (status == 400 and "model" in lowered):
            return (f"The model server does not serve {self.model_name!r} (HTTP {status}: {detail}). Set "
                    "TUTOR_OPENAI_MODEL to a name its /v1/models lists.")
        if status in RETRY_STATUSES:
            return (f"The model server is busy or restarting (HTTP {status}, {self.retries + 1} tries). Try again "
                    "shortly; TUTOR_OPENAI_RETRIES sets how often the tutor retries.")
        return f"The model server answered HTTP {status}: {detail}"

    def close(self) -> None:
        self.client.close()


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): the server's Retry-After if it gives one, else 0.5, 1, 2...
    Both capped at 8 s, so a learner waits at most a few seconds more before seeing a clear error."""
    try:
        return min(float(retry_after), MAX_BACKOFF_S)
    except (TypeError, ValueError):
        return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_S)


def _error_detail(response: httpx.Response) -> str:
    try:
        response.read()
    except httpx.HTTPError:
        return ""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        return _message_of(data.get("error") or data.get("detail") or data.get("message") or data)
    return str(data)[:300]


def _message_of(error) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or error
    return str(error)[:300]
