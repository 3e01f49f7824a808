"""The llama.cpp back-end of the chat-model interface (tutor.models.ChatModel) and of the Inspector, for GGUF
models on CPU. The only importer of llama_cpp.

It runs the GGUF as it ships (Q4_1 for the embedded SmolLM2: 98 MB read per token instead of 540 MB of float32
weights) with the project's LoRA adapter applied by llama.cpp (tutor.models.lora_gguf), renders prompts with the
model's own chat template and the same system-role folding as training, and samples with transformers'
semantics (context.sampler_chain). One generation at a time per model; a reader that stops early cancels it.
"""
from __future__ import annotations

import atexit
import codecs
import logging
import os
import queue
import threading
import time
import weakref
from typing import Iterator

import llama_cpp

from tutor.config import EMBEDDED, Settings
from tutor.errors import GenerationError, ModelLoadError
from tutor.models import budget, lora_gguf, sources
from tutor.models.chat_format import ChatTemplate, accepts_system_role, fold_system
from tutor.models.llamacpp import probe, weights
from tutor.models.llamacpp.context import Context, sampler_chain
from tutor.models.protocol import GenerationSettings, Message, ModelInfo, prompt_budget, until_stop
from tutor.prompts import PROMPTS_DIR

log = logging.getLogger(__name__)

# llama.cpp allocates (and clears, so it is resident) the KV cache for the whole window up front: 23 KB per token
# for SmolLM2-135M (30 layers x 384 values x 2 bytes), 189 MB for its trained 8,192 tokens, more than the rest of
# the process. No prompt may take more than TUTOR_MAX_PROMPT_TOKENS (tutor.models.budget) and no reply more than
# 1,024 tokens (the Playground's longest), so the window is their sum rounded up to a multiple of 1,024:
# 2,048 + 1,024 = 3,072 tokens by default, 71 MB.
REPLY_TOKENS, ROUND = 1024, 1024


def context_size(settings: Settings, trained: int) -> int:
    wanted = settings.max_prompt_tokens + REPLY_TOKENS
    return min(trained, -(-wanted // ROUND) * ROUND)


# Tokens per llama_decode call while reading a prompt: llama.cpp's default, large enough that an 800-token
# prompt takes two calls.
BATCH = 512
# One more thread than there are free cores makes llama.cpp crawl: its threads spin at a barrier after every
# operation, so one descheduled thread stalls the others. Measured on the 2-core machine with other jobs running:
# decoding with 2 threads fell to 1-2 tok/s while 1 thread kept 57-85, and reading a prompt with 2 threads ran at
# 16-77 tok/s against 104-276 with 1. On the same machine when quiet, 2 threads read prompts 1.5x faster
# (610-690 against 405-415 tok/s) but still decoded slower (111-115 against 121-123 tok/s: a token's operations
# are too small to share). So generation uses the usable cores but one, at most 4, and a prompt is read with
# every usable core (at most 8) when the 1-minute load average says they are free, with the decode count when not.
MAX_DEFAULT_THREADS, MAX_PROMPT_THREADS = 4, 8


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores() - 1))


def prompt_threads(decode: int) -> int:
    """Threads for the next prompt: all usable cores if the load average leaves them free (0.5 of slack)."""
    cores = min(usable_cores(), MAX_PROMPT_THREADS)
    return cores if os.getloadavg()[0] < usable_cores() - 0.5 else decode


_OPEN: "weakref.WeakSet[LlamaCppChatModel]" = weakref.WeakSet()
# Generations in flight, cancelled before the interpreter joins its threads at exit: a thread still inside
# llama.cpp when the process tears down aborts it. A stream whose reader went away (a closed browser tab) is never
# closed, so its own `finally` cannot do this. (The hook concurrent.futures uses; atexit would be too late.)
_IN_FLIGHT: set[threading.Event] = set()
getattr(threading, "_register_atexit", lambda fn: None)(lambda: [event.set() for event in list(_IN_FLIGHT)])


@atexit.register
def _close_all() -> None:
    """Free llama.cpp's memory while the interpreter is intact (llama-cpp-python's __del__ fails at teardown)."""
    for model in list(_OPEN):
        model.close()


class LlamaCppChatModel:
    def __init__(self, llm: llama_cpp.Llama, *, name: str, adapter: str | None, max_prompt_tokens: int,
                 info_extra: dict, adaptive_threads: bool = False):
        self.llm = llm
        self.context = Context(llm, (lambda: prompt_threads(llm.n_threads)) if adaptive_threads else None)
        self.lock = threading.Lock()  # one user of the KV cache at a time: generation or an instrument
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._pieces: dict[tuple[int, bool], bytes] = {}
        meta = llm.metadata
        specials = {f"{kind}_token": self.piece(int(meta[f"tokenizer.ggml.{kind}_token_id"]), special=True).decode(
            "utf-8", "replace") for kind in ("bos", "eos") if f"tokenizer.ggml.{kind}_token_id" in meta}
        # A base model without a template gets the project's plain transcript format, as the transformers path does.
        template = meta.get("tokenizer.chat_template") or (PROMPTS_DIR / "plain_chat.md").read_text()
        self.template = ChatTemplate(template, **specials)
        self.folds_system = not accepts_system_role(self.template)
        kind = meta.get("general.file_type")
        kind = _FILE_TYPES.get(int(kind), f"file type {kind}") if kind is not None else "unknown"
        self.info = ModelInfo(
            name=name, adapter=adapter, device="cpu", dtype=kind, quantization=f"GGUF {kind}",
            context_window=llm.n_ctx(), max_prompt_tokens=min(llm.n_ctx(), max_prompt_tokens), backend="llama.cpp",
            extra={**info_extra, "folds_system_role": self.folds_system, "threads": llm.n_threads,
                   "prompt_threads": "by load average" if adaptive_threads else llm.n_threads},
            parameters=int(llama_cpp.llama_model_n_params(llm.model)),
        )
        _OPEN.add(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> "LlamaCppChatModel":
        started = time.perf_counter()
        path = sources.gguf_path(settings)
        adapter_dir = sources.find_adapter(settings)
        lora, cached = lora_gguf.cached_export(settings, adapter_dir, path) if adapter_dir else (None, True)
        threads = settings.threads or default_threads()
        metadata, _ = sources.read_header(path)
        trained = metadata.get(f"{metadata.get('general.architecture')}.context_length") or 4096
        served, weights_cached = weights.serving_file(settings, path, metadata.get("general.file_type"), threads)
        try:
            llm = llama_cpp.Llama(str(served), lora_path=str(lora) if lora else None,
                                  n_ctx=context_size(settings, trained), n_batch=BATCH, n_ubatch=BATCH,
                                  n_threads=threads, n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load TUTOR_MODEL={settings.model!r} ({path}"
                f"{f' with the adapter {lora}' if lora else ''}): {exc}. Check that the file is a GGUF model "
                "llama.cpp supports, or use TUTOR_BACKEND=transformers."
            ) from exc
        name = sources.EMBEDDED_NAME if settings.model == EMBEDDED else path.name
        return cls(llm, name=name, adapter=adapter_dir.name if adapter_dir else None,
                   max_prompt_tokens=settings.max_prompt_tokens, adaptive_threads=not settings.threads, info_extra={
            "source": str(path), "weights": str(served), "lora_gguf": str(lora) if lora else None,
            "from_cache": cached and weights_cached,
            "load_seconds": round(time.perf_counter() - started, 2)})

    def close(self) -> None:
        with self.lock:
            self.context.close()
            self.llm.close()
        _OPEN.discard(self)

    # -- text and tokens -----------------------------------------------------------------------------------
    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (cached: the vocabulary is fixed)."""
        key = (token, special)
        if key not in self._pieces:
            self._pieces[key] = self.llm.detokenize([token], special=special)
        return self._pieces[key]

    def tokens_of(self, text: str) -> list[int]:
        # special=True: "<|im_end|>" written in the text is the control token, as Hugging Face tokenizers read it.
        return self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=True)

    def text_of(self, ids: list[int]) -> str:
        return b"".join(self.piece(i, special=True) for i in ids).decode("utf-8", "replace")

    def _prepare(self, messages: list[Message]) -> list[Message]:
        # The same folding training uses (tutor.finetune.dataset), so the adapter sees what it was trained on.
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        return fold_system(messages) if self.folds_system else messages

    def render(self, messages: list[Message]) -> str:
        return self.template.apply_chat_template(self._prepare(messages), add_generation_prompt=True)

    def encode(self, messages: list[Message]) -> list[int]:
        """The prompt's token ids, chat template applied."""
        return self.tokens_of(self.render(messages))

    def count_tokens(self, text: str) -> int:
        return len(self.tokens_of(text))

    def clip_tokens(self, text: str, max_tokens: int) -> str:
        """The first ``max_tokens`` tokens of ``text``, as text."""
        ids = self.tokens_of(budget.precut(text, max_tokens))
        return text if len(ids) <= max_tokens else self.text_of(ids[:max_tokens])

    def fit_messages(self, messages: list[Message], reserve: int) -> tuple[list[Message], bool]:
        return budget.fit_messages(messages, prompt_budget(self.info, reserve),
                                   count=lambda ms: self.count_tokens(self.render(ms)),
                                   count_text=self.count_tokens, clip=self.clip_tokens)

    def _system_length(self, messages: list[Message], prompt: list[int]) -> int:
        """How many leading prompt tokens are the system message (0 when there is none or it is folded)."""
        if self.folds_system or not messages or messages[0]["role"] != "system":
            return 0
        head = self.tokens_of(self.template.apply_chat_template(self._prepare(messages[:1])))
        return len(head) if prompt[:len(head)] == head else 0

    # -- generation ----------------------------------------------------------------------------------------
    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        prompt = self.encode(messages)
        room = self.info.context_window - len(prompt)
        if room < 1:
            raise GenerationError(f"The prompt is {len(prompt)} tokens, but the model reads at most "
                                  f"{self.info.context_window}: shorten the conversation or the text in it.")
        out: queue.SimpleQueue = queue.SimpleQueue()
        cancel = threading.Event()
        job = (prompt, self._system_length(messages, prompt), settings, min(settings.max_new_tokens, room))
        worker = threading.Thread(target=self._generate, args=(*job, cancel, out), daemon=False, name="llama.cpp")
        _IN_FLIGHT.add(cancel)
        worker.start()
        try:
            yield from until_stop(_drain(out), settings.stop)
        finally:
            cancel.set()  # also stops the worker when the caller stops reading early
            worker.join(timeout=60)
            _IN_FLIGHT.discard(cancel)

    def _generate(self, prompt, system, settings, limit, cancel, out) -> None:
        try:
            with self.lock:
                if cancel.is_set():
                    return
                self.context.prefill(prompt, system)
                chain = sampler_chain(settings, prompt, self.context.n_vocab, self.info.context_window)
                decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # pieces may split a character
                try:
                    for step in range(limit):
                        if cancel.is_set():
                            break
                        token = llama_cpp.llama_sampler_sample(chain, self.llm.ctx, -1)
                        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                            break
                        if text := decoder.decode(self.piece(token)):
                            out.put(text)
                        if step < limit - 1:
                            self.context.decode([token])
                    if tail := decoder.decode(b"", final=True):
                        out.put(tail)
                finally:
                    llama_cpp.llama_sampler_free(chain)
        except Exception as exc:  # surfaced to the reader by _drain
            log.exception("generation failed")
            out.put(exc)
        finally:
            out.put(None)
            _IN_FLIGHT.discard(cancel)

    # -- looking inside (tutor.instruments) ----------------------------------------------------------------
    def next_token(self, prompt: str, **options) -> list[dict]:
        return probe.next_token(self, prompt, **options)

    def sample_next(self, prompt: str, **options) -> dict:
        return probe.sample_next(self, prompt, **options)

    def decode_token(self, token_id: int) -> str:
        return self.piece(int(token_id), special=True).decode("utf-8", "replace")

    def tokenize(self, text: str) -> list[dict]:
        return probe.tokenize(self, text)

    def compare_tokenize(self, text: str) -> tuple[str, list[dict]] | None:
        return probe.compare_tokenize(text)

    def sequence_logprob(self, prompt: str, response: str, chat: bool = True) -> dict:
        return probe.sequence_logprob(self, prompt, response, chat=chat)


def _drain(out: queue.SimpleQueue) -> Iterator[str]:
    while (item := out.get()) is not None:
        if isinstance(item, BaseException):
            raise GenerationError(f"The model failed while writing: {item}") from item
        yield item


# llama.cpp's file types (general.file_type, enum llama_ftype) for the quantizations a CPU model usually has.
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 12: "Q3_K_M",
               14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}
