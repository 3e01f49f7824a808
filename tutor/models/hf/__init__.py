"""The transformers back-end of the chat-model interface (tutor.models.ChatModel).

This package is the only importer of torch, transformers, peft and bitsandbytes in the app
(tutor.finetune imports them too, for training).
"""
from __future__ import annotations

import logging
import threading
from typing import Iterator

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from tutor.config import Settings
from tutor.errors import GenerationError
from tutor.models import budget
from tutor.models.chat_format import accepts_system_role, fold_system
from tutor.models.hf import loading, probe
from tutor.models.hf.processors import (
    FrequencyPenaltyLogitsProcessor,
    PresencePenaltyLogitsProcessor,
    StopOnSequences,
)
from tutor.models.protocol import GenerationSettings, Message, ModelInfo, prompt_budget, until_stop
from tutor.prompts import PROMPTS_DIR

log = logging.getLogger(__name__)

# Generations in flight. At interpreter exit they are cancelled and waited for: a thread still inside torch
# when the process tears down aborts it ("terminate called without an active exception", exit 134). A stream
# whose reader went away (a closed browser tab) is never closed, so its own `finally` cannot do this.
_IN_FLIGHT: set[threading.Event] = set()


def _cancel_all() -> None:
    for event in list(_IN_FLIGHT):
        event.set()


# Runs before the interpreter joins non-daemon threads (the hook concurrent.futures uses); atexit would be too late.
getattr(threading, "_register_atexit", lambda fn: None)(_cancel_all)


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def count_parameters(model) -> int | None:
    """Weights in the model. transformers' num_parameters counts a packed 4-bit weight as one parameter,
    where a plain numel() would count half of them."""
    count = getattr(model, "num_parameters", None)
    try:
        return int(count()) if callable(count) else sum(p.numel() for p in model.parameters())
    except Exception:  # an exotic wrapper: the size is unknown, and the tutor then answers extractively
        return None


class HFChatModel:
    def __init__(self, loaded: loading.Loaded, max_prompt_tokens: int = 2_048):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self._lock = threading.Lock()  # one generate() at a time: the seed and the CPU threads are global
        if not self.tokenizer.chat_template:  # a base model: use the project's plain transcript format
            self.tokenizer.chat_template = (PROMPTS_DIR / "plain_chat.md").read_text()
        self.folds_system = not accepts_system_role(self.tokenizer)
        config = getattr(self.model, "config", None)
        window = getattr(config, "max_position_embeddings", None) or self.tokenizer.model_max_length
        self.info = ModelInfo(
            name=loaded.name,
            adapter=loaded.adapter,
            device=loaded.device,
            dtype=loaded.dtype,
            quantization=loaded.quantization,
            context_window=int(min(window, 1_000_000)),
            max_prompt_tokens=int(min(window, max_prompt_tokens)),
            extra={"source": loaded.source, "load_seconds": round(loaded.load_seconds, 2),
                   "from_cache": loaded.from_cache, "folds_system_role": self.folds_system},
            parameters=count_parameters(self.model),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "HFChatModel":
        return cls(loading.load(settings), settings.max_prompt_tokens)

    # -- prompt text -----------------------------------------------------------------------------------
    def _prepare(self, messages: list[Message]) -> list[Message]:
        # The same folding training uses (tutor.dataset), so the adapter sees served prompts as it was trained.
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        return fold_system(messages) if self.folds_system else messages

    def render(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(self._prepare(messages), tokenize=False, add_generation_prompt=True)

    def encode(self, messages: list[Message]) -> dict:
        return self.tokenizer.apply_chat_template(
            self._prepare(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def clip_tokens(self, text: str, max_tokens: int) -> str:
        """The first ``max_tokens`` tokens of ``text``, as text."""
        ids = self.tokenizer(budget.precut(text, max_tokens), add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def fit_messages(self, messages: list[Message], reserve: int) -> tuple[list[Message], bool]:
        return budget.fit_messages(messages, prompt_budget(self.info, reserve),
                                   count=lambda ms: self.count_tokens(self.render(ms)),
                                   count_text=self.count_tokens, clip=self.clip_tokens)

    # -- generation ------------------------------------------------------------------------------------
    def _generate_kwargs(self, inputs: dict, settings: GenerationSettings, cancel: threading.Event) -> dict:
        prompt_length = inputs["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if settings.frequency_penalty:
            processors.append(FrequencyPenaltyLogitsProcessor(settings.frequency_penalty, prompt_length))
        if settings.presence_penalty:
            processors.append(PresencePenaltyLogitsProcessor(settings.presence_penalty, prompt_length))
        stopping = StoppingCriteriaList([_Cancelled(cancel)])
        if settings.stop:
            stopping.append(StopOnSequences(settings.stop, self.tokenizer, prompt_length))
        sampling = (
            {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
            if settings.greedy
            else {"do_sample": True, "temperature": settings.temperature,
                  "top_k": settings.top_k or None, "top_p": settings.top_p}
        )
        return dict(
            **inputs,
            **sampling,
            max_new_tokens=settings.max_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            logits_processor=processors,
            stopping_criteria=stopping,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        inputs = self.encode(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancel = threading.Event()
        kwargs = self._generate_kwargs(inputs, settings, cancel)
        failure: list[BaseException] = []

        def run():
            try:
                with self._lock, torch.inference_mode():
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed)
                    self.model.generate(**kwargs, streamer=streamer)
            except Exception as exc:  # surfaced to the caller below
                log.exception("generation failed")
                failure.append(exc)
                streamer.end()
            finally:
                _IN_FLIGHT.discard(cancel)

        _IN_FLIGHT.add(cancel)
        worker = threading.Thread(target=run, daemon=False, name="generate")
        worker.start()
        try:
            yield from until_stop(streamer, settings.stop)
            if failure:
                raise GenerationError(f"The model failed while writing: {failure[0]}") from failure[0]
        finally:
            cancel.set()  # also stops the worker when the caller stops reading early
            worker.join(timeout=60)
            _IN_FLIGHT.discard(cancel)

    # -- looking inside (tutor.instruments) ------------------------------------------------------------
    # Forward passes take the generation lock: one model, one set of CPU threads, one thing at a time.
    def next_token(self, prompt: str, **options) -> list[dict]:
        with self._lock:
            return probe.next_token(self, prompt, **options)

    def sample_next(self, prompt: str, **options) -> dict:
        with self._lock:
            return probe.sample_next(self, prompt, **options)

    def decode_token(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)])

    def tokenize(self, text: str) -> list[dict]:
        return probe.tokenize(self.tokenizer, text)

    def compare_tokenize(self, text: str) -> tuple[str, list[dict]] | None:
        other = probe.compare_tokenizer()
        return (probe.COMPARE_TOKENIZER_NAME, probe.tokenize(other, text)) if other is not None else None

    def sequence_logprob(self, prompt: str, response: str, chat: bool = True) -> dict:
        with self._lock:
            return probe.sequence_logprob(self, prompt, response, chat=chat)
