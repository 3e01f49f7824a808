"""Generation controls transformers does not have: frequency and presence penalties, and stop sequences.

Both penalties count only the tokens generated so far (as OpenAI's do), not the prompt: counting the prompt
would punish a reply for quoting the question it answers.

- frequency penalty: ``logit -= penalty * count``  -> grows with every repeat.
- presence penalty:  ``logit -= penalty * (count > 0)`` -> the same for a token seen once or ten times.
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessor, StoppingCriteria

# Shared by every back-end; re-exported here for the transformers streamer.
from tutor.models.protocol import cut_at_stop, safe_prefix_length  # noqa: F401


def _counts(input_ids: torch.LongTensor, prompt_length: int, vocab_size: int) -> torch.Tensor:
    generated = input_ids[:, prompt_length:]
    counts = torch.zeros((input_ids.shape[0], vocab_size), dtype=torch.float32, device=input_ids.device)
    if generated.shape[1]:
        counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=torch.float32))
    return counts


class FrequencyPenaltyLogitsProcessor(LogitsProcessor):
    def __init__(self, penalty: float, prompt_length: int):
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        counts = _counts(input_ids, self.prompt_length, scores.shape[-1])
        return scores - self.penalty * counts.to(scores.dtype)


class PresencePenaltyLogitsProcessor(LogitsProcessor):
    def __init__(self, penalty: float, prompt_length: int):
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        present = _counts(input_ids, self.prompt_length, scores.shape[-1]) > 0
        return scores - self.penalty * present.to(scores.dtype)


class StopOnSequences(StoppingCriteria):
    """Stop once the generated text contains any stop sequence. Works on decoded text because a stop
    sequence may span several tokens, or sit inside one."""

    def __init__(self, stops: tuple[str, ...], tokenizer, prompt_length: int):
        self.stops = stops
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        # Only the tail can hold a new match: decode enough tokens to cover the longest stop string.
        self.window = max(len(s) for s in stops) + 8

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        done = []
        for row in input_ids:
            tail = self.tokenizer.decode(row[self.prompt_length:][-self.window:], skip_special_tokens=True)
            done.append(any(s in tail for s in self.stops))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
