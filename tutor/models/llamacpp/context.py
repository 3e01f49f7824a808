"""One llama.cpp context: what its KV cache holds, feeding it tokens, saved system-prompt prefixes, and the
sampler chain. Not thread-safe: LlamaCppChatModel's lock serialises every use.

Prefix caching works at two levels:
- the KV cache keeps the last prompt and reply; the next prompt re-uses its longest common prefix, so the next
  turn of a conversation only reads the new messages;
- the KV state right after a system message is saved (a few MB: 23 KB per token for SmolLM2-135M, see
  ``SAVED_BYTES``), and again after the part the prompt shares with the last prompt that had the same system
  message (the fixed instructions of the grounded-answer template), and restored when another call with that
  system message comes after an unrelated one (a self-check between two answers, another learner), so those
  tokens are read once per process.
"""
from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Callable

import llama_cpp
import numpy as np

from tutor.errors import GenerationError
from tutor.models.protocol import GenerationSettings

# Rows of logits fetched per llama_decode call when every position's logits are needed (sequence
# log-probabilities): 64 rows x 49,152 vocabulary x 4 bytes = 12.6 MB of output buffer, instead of 100 MB for a
# whole 512-token batch.
ALL_LOGITS_ROWS = 64
# Saved system prefixes, most recent kept. SmolLM2-135M's KV cache is 30 layers x (192 K + 192 V) values x 2 bytes
# = 23 KB per token, so a 180-token tutor system prompt is 4 MB and 32 MB holds about eight of them.
SAVED_BYTES = 32 * 1024 * 1024
SEQ = 0  # everything runs in sequence 0: one conversation at a time
LAST_PROMPTS = 16  # system messages whose last prompt is remembered, to find what the next one shares with it


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n


class Context:
    def __init__(self, llm: llama_cpp.Llama, prompt_threads: Callable[[], int] | None = None):
        """``prompt_threads``: how many threads to read the next prompt with (None: llama.cpp's setting)."""
        self.llm, self.ctx = llm, llm.ctx
        self.prompt_threads, self.batch_threads = prompt_threads, llm.n_threads_batch
        self.n_vocab = llm.n_vocab()
        self.batch_size = llm.n_batch
        self.batch = llama_cpp.llama_batch_init(self.batch_size, 0, 1)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.tokens: list[int] = []  # what the KV cache holds for SEQ, in order
        self.saved: OrderedDict[tuple[int, ...], ctypes.Array] = OrderedDict()
        self.last_prompt: OrderedDict[tuple[int, ...], list[int]] = OrderedDict()  # per system message
        self.hits = {"reused_tokens": 0, "restored_prefixes": 0, "saved_prefixes": 0}

    def close(self) -> None:
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        self.saved.clear()

    # -- the KV cache --------------------------------------------------------------------------------------
    def clear(self) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, SEQ, -1, -1)
        self.tokens = []

    def truncate(self, keep: int) -> None:
        if keep < len(self.tokens):
            llama_cpp.llama_memory_seq_rm(self.memory, SEQ, keep, -1)
            del self.tokens[keep:]

    def decode(self, tokens: list[int], logits: str = "last") -> np.ndarray | None:
        """Append ``tokens`` to the cache. ``logits``: "none", "last" (a view of the last token's row, valid until
        the next decode) or "all" (a copy, one row per token)."""
        rows = []
        step = ALL_LOGITS_ROWS if logits == "all" else self.batch_size
        for start in range(0, len(tokens), step):
            chunk = tokens[start:start + step]
            batch, at = self.batch, len(self.tokens)
            for i, token in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, at + i, 1
                batch.seq_id[i][0] = SEQ
                batch.logits[i] = logits == "all" or (logits == "last" and start + i == len(tokens) - 1)
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(self.ctx, batch)
            if status != 0:
                self.clear()  # a failed batch can leave part of itself in the cache
                raise GenerationError(f"llama.cpp could not read the prompt (llama_decode returned {status}); "
                                      "a prompt longer than the context window does this: shorten it.")
            self.tokens.extend(chunk)
            if logits == "all":
                rows.append(np.ctypeslib.as_array(llama_cpp.llama_get_logits(self.ctx),
                                                  shape=(len(chunk), self.n_vocab)).copy())
        if logits == "all":
            return np.concatenate(rows) if rows else np.zeros((0, self.n_vocab), dtype=np.float32)
        if logits == "last" and tokens:
            return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
        return None

    def prefill(self, prompt: list[int], system: int = 0) -> np.ndarray:
        """Make the cache hold ``prompt``; return the logits after its last token (a view, see ``decode``).

        ``system``: how many leading tokens are a system message. The KV state is saved at its end and at the end
        of what this prompt shares with the last one that had the same system message (the fixed instructions of
        a prompt template, say), and the longest saved prefix is restored when the cache holds less of it."""
        if not prompt:
            raise ValueError("Nothing to read: the prompt has no tokens.")
        if self.prompt_threads is not None and (wanted := self.prompt_threads()) != self.batch_threads:
            # llama.cpp reads batches of more than one token with n_threads_batch, single tokens with n_threads
            llama_cpp.llama_set_n_threads(self.ctx, self.llm.n_threads, wanted)
            self.batch_threads = wanted
        system = system if 0 < system < len(prompt) else 0
        # Read at least the last token again: its logits are what the caller needs.
        common = min(common_prefix(self.tokens, prompt), len(prompt) - 1)
        marks = [system] if system else []
        if system:
            key = tuple(prompt[:system])
            last = self.last_prompt.pop(key, None)
            self.last_prompt[key] = prompt
            while len(self.last_prompt) > LAST_PROMPTS:
                self.last_prompt.popitem(last=False)
            shared = min(common_prefix(last, prompt), len(prompt) - 1) if last else 0
            marks += [shared] if shared > system else []
        saved = max((k for k in self.saved if common < len(k) < len(prompt) and tuple(prompt[:len(k)]) == k),
                    key=len, default=None)
        if saved is not None and self._restore(saved):
            common = len(saved)
        self.truncate(common)
        self.hits["reused_tokens"] += common
        for mark in marks:
            if mark > len(self.tokens):
                self.decode(prompt[len(self.tokens):mark], logits="none")
                self._save(prompt[:mark])
        # The last token is always read on its own: llama.cpp computes a batch of one with other kernels than a
        # long batch (for Q8_0 weights), and the logits must not depend on how much of the prompt was cached,
        # or the same greedy call could answer differently the second time.
        self.decode(prompt[len(self.tokens):-1], logits="none")
        return self.decode(prompt[-1:])

    def _save(self, prefix: list[int]) -> None:
        size = llama_cpp.llama_state_seq_get_size(self.ctx, SEQ)
        state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(self.ctx, state, size, SEQ) == 0:
            return
        self.saved[tuple(prefix)] = state
        self.hits["saved_prefixes"] += 1
        while sum(map(len, self.saved.values())) > SAVED_BYTES and len(self.saved) > 1:
            self.saved.popitem(last=False)

    def _restore(self, prefix: tuple[int, ...]) -> bool:
        state = self.saved[prefix]
        self.saved.move_to_end(prefix)
        self.clear()
        if llama_cpp.llama_state_seq_set_data(self.ctx, state, len(state), SEQ) == 0:
            self.clear()
            return False
        self.tokens = list(prefix)
        self.hits["restored_prefixes"] += 1
        return True


def sampler_chain(settings: GenerationSettings, prompt: list[int], n_vocab: int, window: int, *,
                  min_p: float = 0.0, draw: bool = True):
    """A llama.cpp sampler chain with transformers' semantics, so both back-ends read GenerationSettings alike.

    - repetition penalty over the prompt and the reply (transformers counts every token in the input): a
      penalties sampler that has already seen the prompt;
    - frequency and presence penalties over the reply only (tutor.models.hf.processors, as OpenAI's do);
    - then temperature, top-k, top-p and min-p in transformers' order (llama-cpp-python's default chain puts
      temperature last and always adds min-p 0.05), and a seeded draw; or the most likely token when greedy.
    ``draw=False`` leaves the last step out: applying the chain then leaves the candidates a draw would pick
    from, with their shaped logits (what the next-token instrument shows). Free it with llama_sampler_free."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = lambda sampler: llama_cpp.llama_sampler_chain_add(chain, sampler)  # noqa: E731
    if settings.repetition_penalty != 1.0:
        repeat = llama_cpp.llama_sampler_init_penalties(n_vocab, window, settings.repetition_penalty, 0.0, 0.0)
        for token in prompt:
            llama_cpp.llama_sampler_accept(repeat, token)
        add(repeat)
    if settings.frequency_penalty or settings.presence_penalty:
        add(llama_cpp.llama_sampler_init_penalties(n_vocab, window, 1.0, settings.frequency_penalty,
                                                   settings.presence_penalty))
    if settings.greedy:
        if draw:
            add(llama_cpp.llama_sampler_init_greedy())
        return chain
    add(llama_cpp.llama_sampler_init_temp(settings.temperature))
    if settings.top_k:
        add(llama_cpp.llama_sampler_init_top_k(settings.top_k))
    if settings.top_p < 1.0:
        add(llama_cpp.llama_sampler_init_top_p(settings.top_p, 1))
    if min_p:
        add(llama_cpp.llama_sampler_init_min_p(min_p, 1))
    if draw:
        seed = llama_cpp.LLAMA_DEFAULT_SEED if settings.seed is None else settings.seed & 0xFFFFFFFF
        add(llama_cpp.llama_sampler_init_dist(seed))
    return chain


# One llama_token_data (int32 id, float logit, float p): numpy's mirror, to hand llama.cpp the logits in one piece.
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def shape(chain, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, logits) of the candidates left after applying ``chain`` (built with draw=False) to ``logits``."""
    data = np.zeros(logits.size, dtype=TOKEN_DATA)
    data["id"] = np.arange(logits.size)
    data["logit"] = logits
    array = llama_cpp.llama_token_data_array(
        data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=logits.size, selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    # Read where the array points now: a sampler may hand back another buffer.
    raw = ctypes.cast(array.data, ctypes.POINTER(ctypes.c_uint8))
    kept = np.ctypeslib.as_array(raw, shape=(array.size * TOKEN_DATA.itemsize,)).view(TOKEN_DATA).copy()
    keep = np.isfinite(kept["logit"])
    return kept["id"][keep].astype(np.int64), kept["logit"][keep].astype(np.float64)
