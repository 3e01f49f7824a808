"""Looking inside the model: next-token probabilities, tokenization, and the log-probability of a response.

These need the logits and the tokenizer, so they live beside the transformers back-end; tutor.instruments
wraps them for the UI and the CLI.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import torch
from transformers import GenerationConfig

from tutor.models import budget
from tutor.models.protocol import check_shaping

COMPARE_TOKENIZER_NAME = "Llama 2 tokenizer (32k SentencePiece BPE, shipped in the wordllama wheel)"
# The instruments look at one position (next token) or at a response (log-probability), so they read at most
# 2,048 tokens of text: ~5.7 s of prefill for the embedded model on a 2-core CPU (362 tok/s), and well inside
# any context window we serve. Longer text keeps its end (what the next token follows) and is noted.
MAX_PROBE_TOKENS = 2_048
# A response scored for its probability: half the window, so the prompt keeps at least the other half.
MAX_RESPONSE_TOKENS = MAX_PROBE_TOKENS // 2


def _window(chat_model) -> int:
    return min(MAX_PROBE_TOKENS, chat_model.info.max_prompt_tokens)


def _tail(ids: torch.Tensor, keep: int) -> torch.Tensor:
    return ids[:, -keep:] if ids.shape[1] > keep else ids


def _prompt_ids(chat_model, prompt: str, chat: bool, keep: int | None = None) -> torch.Tensor:
    """Token ids of the prompt: with the chat template (as the tutor sends it) or as raw text (completion),
    at most ``keep`` tokens (default: the probe window), keeping the end."""
    keep = keep or _window(chat_model)
    prompt = prompt[-keep * budget.MAX_CHARS_PER_TOKEN:]  # bound the tokenizer's work first
    if chat:
        ids = chat_model.encode([{"role": "user", "content": prompt}])["input_ids"]
    else:
        ids = chat_model.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    return _tail(ids, keep).to(chat_model.model.device)


def shaping_config(temperature: float, top_k: int, top_p: float, min_p: float = 0.0,
                   repetition_penalty: float = 1.0) -> GenerationConfig:
    """The generation config ``generate`` would sample the next token with, so the instruments show exactly
    the distribution that is sampled: transformers' own processors (repetition penalty, then temperature,
    top-k, top-p, min-p), in its own order. Temperature 0 is greedy. Bad values raise ValueError saying which."""
    check_shaping(temperature, top_k, top_p, min_p, repetition_penalty)
    greedy = temperature == 0
    return GenerationConfig(
        do_sample=not greedy, temperature=None if greedy else temperature, top_k=None if greedy else (top_k or 0),
        top_p=None if greedy else top_p, min_p=None if greedy or not min_p else min_p,
        repetition_penalty=repetition_penalty, max_new_tokens=1, output_scores=True, return_dict_in_generate=True)


def _one_step(chat_model, prompt: str, chat: bool, config: GenerationConfig, seed: int | None):
    """One ``generate`` step: the processed scores it sampled from (1-D) and the token it picked."""
    ids = _prompt_ids(chat_model, prompt, chat)
    if ids.shape[1] == 0:
        raise ValueError("There is no text to continue: write a few words first.")
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = chat_model.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                        pad_token_id=chat_model.tokenizer.pad_token_id)
    return out.scores[0][0].float(), int(out.sequences[0, -1])


def _distribution(scores: torch.Tensor, greedy: bool) -> torch.Tensor:
    if greedy:  # generate takes the arg-max: all the mass on one token
        probs = torch.zeros_like(scores)
        probs[scores.argmax()] = 1.0
        return probs
    return torch.softmax(scores, dim=-1)


def next_token(chat_model, prompt: str, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               min_p: float = 0.0, repetition_penalty: float = 1.0, show: int = 10, chat: bool = False) -> list[dict]:
    """The ``show`` most likely next tokens with the probabilities ``generate`` samples them with."""
    config = shaping_config(temperature, top_k, top_p, min_p, repetition_penalty)
    probs = _distribution(_one_step(chat_model, prompt, chat, config, seed=None)[0], temperature == 0)
    values, indices = torch.topk(probs, min(show, probs.numel()))
    return [
        {"token": chat_model.tokenizer.decode([int(i)]), "id": int(i), "prob": round(float(p), 6)}
        for p, i in zip(values, indices)
        if p > 0
    ]


def sample_next(chat_model, prompt: str, *, temperature: float, top_k: int, top_p: float, seed: int | None,
                min_p: float = 0.0, repetition_penalty: float = 1.0, chat: bool = False) -> dict:
    """One token drawn by ``generate`` itself, with the probability it had."""
    config = shaping_config(temperature, top_k, top_p, min_p, repetition_penalty)
    scores, token_id = _one_step(chat_model, prompt, chat, config, seed)
    probs = _distribution(scores, temperature == 0)
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
    """log P(response | prompt), per response token and in total (natural log). A prompt too long for the probe
    window keeps its end, which is what the response follows."""
    response = response[:(MAX_RESPONSE_TOKENS + 1) * budget.MAX_CHARS_PER_TOKEN]
    target = chat_model.tokenizer(response, return_tensors="pt", add_special_tokens=False)["input_ids"]
    if target.shape[1] == 0:
        raise ValueError("The response is empty: give the text whose probability you want.")
    if target.shape[1] > MAX_RESPONSE_TOKENS:
        raise ValueError(f"The response is over {MAX_RESPONSE_TOKENS:,} tokens: score a shorter response "
                         "(a sentence or a paragraph).")
    target = target.to(chat_model.model.device)
    prefix = _prompt_ids(chat_model, prompt, chat, keep=_window(chat_model) - target.shape[1])
    ids = torch.cat([prefix, target], dim=1)
    # The logits at position t predict token t+1: the response's tokens are predicted by the positions from
    # the last prompt token to the second-to-last response token, i.e. the last len(target) + 1 positions
    # minus the final one. Only those rows of the vocabulary projection are computed.
    n = target.shape[1]
    with torch.inference_mode():
        logits = chat_model.model(input_ids=ids, logits_to_keep=n + 1).logits[0, :n].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    tokens = []
    for offset, token_id in enumerate(target[0].tolist()):
        value = float(logprobs[offset, token_id])
        tokens.append({"token": chat_model.tokenizer.decode([token_id]), "id": token_id, "logprob": round(value, 4)})
    total = sum(t["logprob"] for t in tokens)
    return {"tokens": tokens, "total": round(total, 4), "mean": round(total / len(tokens), 4)}
