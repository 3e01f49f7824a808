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


#: Deterministic settings used for grading and judging: the same text always gets the same grade.
GREEDY = GenerationSettings(temperature=0.0, repetition_penalty=1.1, max_new_tokens=160)


@dataclass
class ModelInfo:
    name: str
    adapter: str | None
    device: str
    dtype: str
    quantization: str | None
    context_window: int
    backend: str = "transformers"
    extra: dict = field(default_factory=dict)


class ChatModel(Protocol):
    info: ModelInfo

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Yield the reply in text chunks; stop sequences are never part of the yielded text."""

    def render(self, messages: list[Message]) -> str:
        """The exact text the model receives for these messages (chat template applied)."""

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model's tokenizer (no special tokens added)."""

    def fit_messages(self, messages: list[Message], reserve: int) -> tuple[list[Message], bool]:
        """Trim the conversation so prompt + ``reserve`` new tokens fit the context window.

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


INSPECTOR_METHODS = ("next_token", "sample_next", "decode_token", "tokenize", "compare_tokenize", "sequence_logprob")


def inspectable(model) -> bool:
    """Whether ``model`` implements every Inspector method (the instrument tabs need them)."""
    return all(callable(getattr(model, name, None)) for name in INSPECTOR_METHODS)


def complete(model: ChatModel, messages: list[Message], settings: GenerationSettings = GREEDY) -> str:
    """The whole reply as one string."""
    return "".join(model.stream(messages, settings))
