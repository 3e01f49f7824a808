"""The instruments through llama.cpp's logits: next-token distributions shaped by the very sampler chain
generation uses, one seeded draw from it, token pieces of a text, and the log-probability of a response.

The limits mirror the transformers back-end's (tutor.models.hf.probe): the instruments read at most 2,048 tokens
of text, keeping the end (what the next token follows), and score responses of at most 1,024 tokens.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import llama_cpp
import numpy as np

from tutor.models import budget
from tutor.models.llamacpp.context import sampler_chain, shape
from tutor.models.protocol import GenerationSettings, check_shaping

MAX_PROBE_TOKENS = 2_048
MAX_RESPONSE_TOKENS = MAX_PROBE_TOKENS // 2
COMPARE_TOKENIZER_NAME = "Llama 2 tokenizer (32k SentencePiece BPE, shipped in the wordllama wheel)"


def _window(model) -> int:
    return min(MAX_PROBE_TOKENS, model.info.max_prompt_tokens)


def prompt_ids(model, prompt: str, chat: bool, keep: int | None = None) -> list[int]:
    """The prompt's tokens, chat template applied or raw, at most ``keep`` of them (the end is kept)."""
    keep = keep or _window(model)
    prompt = prompt[-keep * budget.MAX_CHARS_PER_TOKEN:]  # bound the tokenizer's work first
    ids = model.encode([{"role": "user", "content": prompt}]) if chat else model.tokens_of(prompt)
    if not ids:
        raise ValueError("There is no text to continue: write a few words first.")
    return ids[-keep:]


def _settings(temperature: float, top_k: int, top_p: float, repetition_penalty: float, seed=None):
    return GenerationSettings(temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty,
                              seed=seed)


def distribution(model, ids: list[int], settings: GenerationSettings, min_p: float) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, probabilities) a draw would pick from after ``ids``; greedy puts all the mass on one token.

    Call with the model's lock held."""
    logits = model.context.prefill(ids).copy()
    chain = sampler_chain(settings, ids, logits.size, model.info.context_window, min_p=min_p, draw=False)
    try:
        tokens, shaped = shape(chain, logits)
    finally:
        llama_cpp.llama_sampler_free(chain)
    if settings.greedy:  # generation takes the arg-max after the penalties
        return tokens[[int(shaped.argmax())]], np.ones(1)
    probs = np.exp(shaped - shaped.max())
    return tokens, probs / probs.sum()


def next_token(model, prompt: str, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               min_p: float = 0.0, repetition_penalty: float = 1.0, show: int = 10, chat: bool = False) -> list[dict]:
    """The ``show`` most likely next tokens, with the probabilities generation samples them with."""
    check_shaping(temperature, top_k, top_p, min_p, repetition_penalty)
    ids = prompt_ids(model, prompt, chat)
    with model.lock:
        tokens, probs = distribution(model, ids, _settings(temperature, top_k, top_p, repetition_penalty), min_p)
    order = np.argsort(-probs, kind="stable")[:show]
    return [{"token": model.decode_token(int(tokens[i])), "id": int(tokens[i]), "prob": round(float(probs[i]), 6)}
            for i in order if probs[i] > 0]


def sample_next(model, prompt: str, *, temperature: float, top_k: int, top_p: float, seed: int | None,
                min_p: float = 0.0, repetition_penalty: float = 1.0, chat: bool = False) -> dict:
    """One token drawn by the same chain generation uses (same seed, same draw), with its probability."""
    check_shaping(temperature, top_k, top_p, min_p, repetition_penalty)
    ids = prompt_ids(model, prompt, chat)
    settings = _settings(temperature, top_k, top_p, repetition_penalty, seed)
    with model.lock:
        tokens, probs = distribution(model, ids, settings, min_p)
        chain = sampler_chain(settings, ids, model.context.n_vocab, model.info.context_window, min_p=min_p)
        try:
            token = int(llama_cpp.llama_sampler_sample(chain, model.llm.ctx, -1))
        finally:
            llama_cpp.llama_sampler_free(chain)
    prob = float(probs[tokens == token].sum())
    return {"token": model.decode_token(token), "id": token, "prob": round(prob, 6)}


def pieces_from_ends(text: str, ids: list[int], ends: list[int]) -> list[dict]:
    """``{"id", "text"}`` per token, the texts concatenating back to ``text``, from each token's end offset.

    A token that ends inside a character (a byte-level piece of one emoji, say) gets an empty slice and the
    character goes with the token that completes it, so the count stays the real number of tokens."""
    pieces, position = [], 0
    for index, (token_id, end) in enumerate(zip(ids, ends)):
        end = len(text) if index == len(ids) - 1 else max(int(end), position)
        pieces.append({"id": int(token_id), "text": text[position:end]})
        position = end
    return pieces


def tokenize(model, text: str) -> list[dict]:
    ids = model.tokens_of(text)
    # Each token's end as a character offset: the bytes read so far, counted in whole characters of ``text``.
    char_ends = np.cumsum([len(c.encode("utf-8", "replace")) for c in text])
    byte_ends = np.cumsum([len(model.piece(i, special=True)) for i in ids])
    return pieces_from_ends(text, ids, np.searchsorted(char_ends, byte_ends, side="right").tolist())


@lru_cache(maxsize=1)
def _compare_tokenizer():
    """A second tokenizer that works offline: the Llama 2 tokenizer file inside the wordllama wheel, read with the
    ``tokenizers`` library (transformers, and its second of import time, is not needed for it)."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizers" / "l2_supercat_tokenizer_config.json"
    return Tokenizer.from_file(str(path)) if path.is_file() else None


def compare_tokenize(text: str) -> tuple[str, list[dict]] | None:
    tokenizer = _compare_tokenizer()
    if tokenizer is None:
        return None
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return COMPARE_TOKENIZER_NAME, pieces_from_ends(text, encoding.ids, [end for _, end in encoding.offsets])


def sequence_logprob(model, prompt: str, response: str, chat: bool = True) -> dict:
    """log P(response | prompt), per response token and in total (natural log). A prompt too long for the probe
    window keeps its end, which is what the response follows."""
    target = model.tokens_of(response[:(MAX_RESPONSE_TOKENS + 1) * budget.MAX_CHARS_PER_TOKEN])
    if not target:
        raise ValueError("The response is empty: give the text whose probability you want.")
    if len(target) > MAX_RESPONSE_TOKENS:
        raise ValueError(f"The response is over {MAX_RESPONSE_TOKENS:,} tokens: score a shorter response "
                         "(a sentence or a paragraph).")
    prefix = prompt_ids(model, prompt, chat, keep=_window(model) - len(target))
    with model.lock:
        # The logits after the prompt predict the first response token; those after response token t, token t+1.
        rows = [model.context.prefill(prefix).copy(), *model.context.decode(target[:-1], logits="all")]
    tokens = []
    for row, token_id in zip(rows, target):
        top = row.max()
        value = float(row[token_id] - top - np.log(np.exp(row - top, dtype=np.float64).sum()))
        tokens.append({"token": model.decode_token(token_id), "id": token_id, "logprob": round(value, 4)})
    total = sum(t["logprob"] for t in tokens)
    return {"tokens": tokens, "total": round(total, 4), "mean": round(total / len(tokens), 4)}
