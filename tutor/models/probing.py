"""The framework-free half of the instruments, shared by the back-ends that expose logits (transformers and
llama.cpp): shaping a next-token distribution as sampling would, slicing text into its tokens, and the second
tokenizer the tokenizer view compares against. Only numpy and the ``tokenizers`` library."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

COMPARE_TOKENIZER_NAME = "Llama 2 tokenizer (32k SentencePiece BPE, shipped in the wordllama wheel)"


def shape_distribution(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """The sampling distribution after temperature, then top-k, then top-p (the order transformers uses).

    temperature 0 is greedy: all the mass on the most likely token."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        probs = np.zeros_like(logits)
        probs[int(logits.argmax())] = 1.0
        return probs
    logits = logits / temperature
    if top_k and top_k < logits.size:
        cutoff = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits < cutoff, -np.inf, logits)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        sorted_probs = probs[order]
        # keep the smallest set whose mass reaches top_p (a token is kept if the mass before it is < top_p)
        keep_sorted = (np.cumsum(sorted_probs) - sorted_probs) < top_p
        keep = np.zeros(probs.shape, dtype=bool)
        keep[order[keep_sorted]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    return probs


def most_likely(probs: np.ndarray, show: int) -> list[tuple[int, float]]:
    """(token id, probability) of the ``show`` most likely tokens with non-zero probability, most likely first."""
    show = min(show, probs.size)
    top = np.argpartition(-probs, show - 1)[:show]
    top = top[np.argsort(-probs[top], kind="stable")]
    return [(int(i), float(probs[i])) for i in top if probs[i] > 0]


def pieces_from_offsets(text: str, ids: list[int], ends: list[int]) -> list[dict]:
    """``{"id", "text"}`` per token, the texts concatenating back to ``text``, from each token's end offset.

    A space the tokenizer leaves out of its offsets goes with the following token; a token that shares its
    characters with the previous one (a byte-level piece of one emoji, say) gets an empty slice, so the count
    stays the real number of tokens."""
    pieces, position = [], 0
    for index, (token_id, end) in enumerate(zip(ids, ends)):
        end = len(text) if index == len(ids) - 1 else max(end, position)
        pieces.append({"id": int(token_id), "text": text[position:end]})
        position = end
    return pieces


@lru_cache(maxsize=1)
def _compare_tokenizer():
    """A second tokenizer that works offline: the Llama 2 tokenizer file inside the wordllama wheel."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizers" / "l2_supercat_tokenizer_config.json"
    return Tokenizer.from_file(str(path)) if path.is_file() else None


def compare_tokenize(text: str) -> tuple[str, list[dict]] | None:
    """(name, pieces) of ``text`` under the comparison tokenizer, or None when it is not installed."""
    tokenizer = _compare_tokenizer()
    if tokenizer is None:
        return None
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return COMPARE_TOKENIZER_NAME, pieces_from_offsets(text, encoding.ids, [end for _, end in encoding.offsets])
