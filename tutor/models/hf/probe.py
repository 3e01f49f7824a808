"""Looking inside the model: next-token probabilities, tokenization, and the log-probability of a response.

These need the logits and the tokenizer, so they live beside the transformers back-end; tutor.instruments
wraps them for the UI and the CLI.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import torch

COMPARE_TOKENIZER_NAME = "Llama 2 tokenizer (32k SentencePiece BPE, shipped in the wordllama wheel)"


def _prompt_ids(chat_model, prompt: str, chat: bool) -> torch.Tensor:
    """Token ids of the prompt: with the chat template (as the tutor sends it) or as raw text (completion)."""
    if chat:
        return chat_model.encode([{"role": "user", "content": prompt}])["input_ids"]
    ids = chat_model.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    return ids.to(chat_model.model.device)


def shape_distribution(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The sampling distribution after temperature, then top-k, then top-p (the order transformers uses).

    temperature 0 is greedy: all the mass on the most likely token."""
    logits = logits.float()
    if temperature <= 0:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
        return probs
    logits = logits / temperature
    if top_k and top_k < logits.numel():
        cutoff = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < cutoff, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # keep the smallest set whose mass reaches top_p (a token is kept if the mass before it is < top_p)
        keep_sorted = (sorted_probs.cumsum(0) - sorted_probs) < top_p
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[order[keep_sorted]] = True
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    return probs


def next_token(chat_model, prompt: str, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               show: int = 10, chat: bool = False) -> list[dict]:
    """The ``show`` most likely next tokens with their probabilities, most likely first."""
    ids = _prompt_ids(chat_model, prompt, chat)
    with torch.inference_mode():
        logits = chat_model.model(input_ids=ids).logits[0, -1]
    probs = shape_distribution(logits, temperature, top_k, top_p)
    values, indices = torch.topk(probs, min(show, probs.numel()))
    return [
        {"token": chat_model.tokenizer.decode([int(i)]), "id": int(i), "prob": round(float(p), 6)}
        for p, i in zip(values, indices)
        if p > 0
    ]


def sample_next(chat_model, prompt: str, *, temperature: float, top_k: int, top_p: float, seed: int | None,
                chat: bool = False) -> dict:
    """Draw one next token from the shaped distribution."""
    ids = _prompt_ids(chat_model, prompt, chat)
    with torch.inference_mode():
        logits = chat_model.model(input_ids=ids).logits[0, -1]
    probs = shape_distribution(logits, temperature, top_k, top_p)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    token_id = int(torch.multinomial(probs.cpu(), 1, generator=generator))
    return {"token": chat_model.tokenizer.decode([token_id]), "id": token_id, "prob": round(float(probs[token_id]), 6)}


def tokenize(tokenizer, text: str) -> list[dict]:
    """Tokens with ids and the exact slice of ``text`` each covers; the slices concatenate back to ``text``.

    Offsets come from the fast tokenizer. A space the tokenizer leaves out of its offsets goes with the
    following token; a token that shares its characters with the previous one (a byte-level piece of one
    emoji, say) gets an empty slice, so the count stays the real number of tokens."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    pieces, position = [], 0
    for index, (token_id, (_, end)) in enumerate(zip(ids, offsets)):
        end = len(text) if index == len(ids) - 1 else max(end, position)
        pieces.append({"id": int(token_id), "text": text[position:end]})
        position = end
    return pieces


@lru_cache(maxsize=1)
def compare_tokenizer():
    """A second tokenizer that works offline: the Llama 2 tokenizer file inside the wordllama wheel."""
    from transformers import PreTrainedTokenizerFast

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizers" / "l2_supercat_tokenizer_config.json"
    return PreTrainedTokenizerFast(tokenizer_file=str(path)) if path.is_file() else None


def sequence_logprob(chat_model, prompt: str, response: str, chat: bool = True) -> dict:
    """log P(response | prompt), per response token and in total (natural log)."""
    if chat:
        prefix = chat_model.encode([{"role": "user", "content": prompt}])["input_ids"]
    else:
        prefix = chat_model.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    prefix = prefix.to(chat_model.model.device)
    target = chat_model.tokenizer(response, return_tensors="pt", add_special_tokens=False)["input_ids"]
    target = target.to(chat_model.model.device)
    if target.shape[1] == 0:
        raise ValueError("The response is empty: give the text whose probability you want.")
    ids = torch.cat([prefix, target], dim=1)
    with torch.inference_mode():
        logprobs = torch.log_softmax(chat_model.model(input_ids=ids).logits[0].float(), dim=-1)
    start = prefix.shape[1]
    tokens = []
    for offset, token_id in enumerate(target[0].tolist()):
        value = float(logprobs[start + offset - 1, token_id])  # the logits at t predict token t+1
        tokens.append({"token": chat_model.tokenizer.decode([token_id]), "id": token_id, "logprob": round(value, 4)})
    total = sum(t["logprob"] for t in tokens)
    return {"tokens": tokens, "total": round(total, 4), "mean": round(total / len(tokens), 4)}
