"""Looking inside the model: next-token probabilities, tokenization, and the log-probability of a response.

These need the logits and the tokenizer, so they live beside the transformers back-end; tutor.instruments
wraps them for the UI and the CLI.
"""
from __future__ import annotations

import torch

from tutor.models import probing


def _prompt_ids(chat_model, prompt: str, chat: bool) -> torch.Tensor:
    """Token ids of the prompt: with the chat template (as the tutor sends it) or as raw text (completion)."""
    if chat:
        return chat_model.encode([{"role": "user", "content": prompt}])["input_ids"]
    ids = chat_model.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    return ids.to(chat_model.model.device)


def shape_distribution(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The sampling distribution (tutor.models.probing.shape_distribution) for torch logits."""
    return torch.from_numpy(probing.shape_distribution(logits.float().cpu().numpy(), temperature, top_k, top_p))


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
    """Tokens with ids and the exact slice of ``text`` each covers (offsets from the fast tokenizer)."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return probing.pieces_from_offsets(text, encoding["input_ids"], [end for _, end in encoding["offset_mapping"]])


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
