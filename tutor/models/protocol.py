"""The one chat-model interface the rest of the tutor talks to.

A chat model takes a list of ``{"role", "content"}`` messages and ``GenerationSettings`` and streams text
chunks. Everything framework-specific (torch, transformers, peft, bitsandbytes) lives in ``tutor.models.hf``,
imported inside the factory so that importing this module stays cheap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator, Protocol

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

# Stop sequences are checked against the decoded tail of the reply after every token, so their number and length
# bound per-token work: 8 sequences of up to 64 characters cover every real use ("\n\n", "###", "Observation:").
MAX_STOPS, MAX_STOP_CHARS = 8, 64


@dataclass(frozen=True)
class GenerationSettings:
    """How to pick tokens. Defaults suit a tutor: a little randomness, no penalties."""

    max_new_tokens: int = 200
    temperature: float = 0.7  # 0 means greedy decoding
    top_k: int = 50  # 0 disables top-k
    top_p: float = 0.95  # 1.0 disables top-p
    repetition_penalty: float = 1.1  # multiplicative (CTRL-style), 1.0 disables
    frequency_penalty: float = 0.0  # subtracts penalty * count(token) from its logit
    presence_penalty: float = 0.0  # subtracts penalty once from every token already present
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))
        numbers = {"temperature": self.temperature, "top_p": self.top_p, "repetition_penalty": self.repetition_penalty,
                   "frequency_penalty": self.frequency_penalty, "presence_penalty": self.presence_penalty}
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        checks = [
            (self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
            (self.temperature >= 0, "temperature must be 0 (greedy) or more"),
            (self.top_k >= 0, "top_k must be 0 (off) or more"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.repetition_penalty > 0, "repetition_penalty must be above 0 (1.0 is off)"),
            (len(self.stop) <= MAX_STOPS, f"give at most {MAX_STOPS} stop sequences"),
            (all(len(s) <= MAX_STOP_CHARS for s in self.stop),
             f"each stop sequence must be at most {MAX_STOP_CHARS} characters"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_(self, **changes) -> "GenerationSettings":
        return replace(self, **changes)


def check_shaping(temperature: float, top_k: int, top_p: float, min_p: float = 0.0,
                  repetition_penalty: float = 1.0) -> None:
    """Raise ValueError naming the first sampling setting out of range (NaN and infinities included)."""
    rules = [
        ("temperature", temperature, lambda x: x >= 0, "0 (greedy) or more"),
        ("top_k", top_k, lambda x: x >= 0 and x == int(x), "a whole number, 0 (off) or more"),
        ("top_p", top_p, lambda x: 0 < x <= 1, "above 0 and at most 1 (1 is off)"),
        ("min_p", min_p, lambda x: 0 <= x < 1, "0 (off) or more and below 1"),
        ("repetition_penalty", repetition_penalty, lambda x: x > 0, "above 0 (1.0 is off)"),
    ]
    for name, value, ok, wanted in rules:
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
            raise ValueError(f"{name} must be {wanted}; got {value}.")


#: Deterministic settings used for grading and judging: the same text always gets the same grade.
GREEDY = GenerationSettings(temperature=0.0, repetition_penalty=1.1, max_new_tokens=160)


@dataclass
class ModelInfo:
    name: str
    adapter: str | None
    device: str
    dtype: str
    quantization: str | None
    context_window: int  # what the model can read
    # What the app lets one prompt take (TUTOR_MAX_PROMPT_TOKENS): on a CPU a full 8k window is ~25 s of
    # prefill and GBs of attention memory per request, so a classroom serves a smaller budget.
    max_prompt_tokens: int = 2_048
    backend: str = "transformers"
    extra: dict = field(default_factory=dict)
    # Total weights of the model as served (a 4-bit weight counts as one), or None when the back-end cannot tell
    # (a remote server). ``answer_mode`` reads it: below ONE_BILLION the tutor answers extractively.
    parameters: int | None = None


#: Below this many parameters a model writes fluent but unreliable answers from passages (SmolLM2-135M got 1 of
#: 20 course questions right), so ``TUTOR_ANSWER_MODE=auto`` composes answers from the readings' sentences.
ONE_BILLION = 1_000_000_000


def answer_mode(setting: str, info: ModelInfo) -> str:
    """"extractive" or "generative" for ``TUTOR_ANSWER_MODE`` (auto|extractive|generative) and a model.

    auto: generative only when the back-end reports at least ONE_BILLION parameters; an unknown size stays
    extractive, which is correct by construction on any model. Every back-end should fill ModelInfo.parameters."""
    if setting != "auto":
        return setting
    return "generative" if info.parameters is not None and info.parameters >= ONE_BILLION else "extractive"


class ChatModel(Protocol):
    info: ModelInfo

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Yield the reply in text chunks; stop sequences are never part of the yielded text."""

    def render(self, messages: list[Message]) -> str:
        """The exact text the model receives for these messages (chat template applied)."""

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model's tokenizer (no special tokens added)."""

    def fit_messages(self, messages: list[Message], reserve: int) -> tuple[list[Message], bool]:
        """Trim the conversation so prompt + ``reserve`` new tokens fit the context window and the prompt fits
        ``info.max_prompt_tokens`` (see ``prompt_budget``).

        Returns the messages to send and whether anything was cut."""


class Inspector(Protocol):
    """What the instruments (next-token chart, tokenizer view, sequence log-probability) need from a back-end
    that exposes its logits and tokenizer. A back-end without them (a remote server) simply does not implement
    it, and the UI leaves those tabs out."""

    def next_token(self, prompt: str, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                   show: int = 10, chat: bool = False) -> list[dict]:
        """The ``show`` most likely next tokens ``{"token", "id", "prob"}`` after sampling's shaping."""

    def sample_next(self, prompt: str, *, temperature: float, top_k: int, top_p: float, seed: int | None,
                    chat: bool = False) -> dict:
        """One token drawn from the shaped distribution."""

    def decode_token(self, token_id: int) -> str:
        """The text of one token id."""

    def tokenize(self, text: str) -> list[dict]:
        """``{"id", "text"}`` per token; the texts concatenate back to ``text``."""

    def compare_tokenize(self, text: str) -> tuple[str, list[dict]] | None:
        """(name, pieces) from a second tokenizer for comparison, or None when none is available."""

    def sequence_logprob(self, prompt: str, response: str, chat: bool = True) -> dict:
        """``{"tokens": [{"token", "id", "logprob"}], "total", "mean"}``: log P(response | prompt)."""


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the earliest stop sequence, and whether one was found."""
    positions = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(positions)], True) if positions else (text, False)


def safe_prefix_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be shown now: hold back any tail that could be the start of a stop sequence."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold

def until_stop(chunks: Iterator[str], stops: tuple[str, ...]) -> Iterator[str]:
    """Re-chunk streamed text so that no stop sequence, nor the start of one, is ever shown; end at the first.
    Every back-end streams through this, so stop sequences behave the same whatever serves the model."""
    shown, text = 0, ""
    for chunk in chunks:
        text += chunk
        head, stopped = cut_at_stop(text, stops)
        limit = len(head) if stopped else safe_prefix_length(text, stops)
        if limit > shown:
            yield text[shown:limit]
            shown = limit
        if stopped:
            return
    if len(text) > shown:
        yield text[shown:]



INSPECTOR_METHODS = ("next_token", "sample_next", "decode_token", "tokenize", "compare_tokenize", "sequence_logprob")


def inspectable(model) -> bool:
    """Whether ``model`` implements every Inspector method (the instrument tabs need them)."""
    return all(callable(getattr(model, name, None)) for name in INSPECTOR_METHODS)


def prompt_budget(info: ModelInfo, reserve: int) -> int:
    """Tokens a prompt may take when ``reserve`` tokens are kept for the reply."""
    return min(info.context_window - reserve, info.max_prompt_tokens)


def complete(model: ChatModel, messages: list[Message], settings: GenerationSettings = GREEDY) -> str:
    """The whole reply as one string."""
    return "".join(model.stream(messages, settings))
