"""Token budgets: every path from learner text to a model goes through here, so no request can make a prompt
larger than the context window, however the text is built (long messages, a long system message, CJK or emoji
that cost several tokens per character, a prompt that repeats a placeholder).

Two steps, both bounded in work:

1. ``precut``: a cheap character cut before any tokenizing. A token never covers fewer than one character of
   Unicode text... but it can cover many, so the cut is generous: ``MAX_CHARS_PER_TOKEN`` characters per token
   of budget. English averages ~4 characters per token; runs of one symbol ("=====") reach ~16 in BPE
   vocabularies. Cutting at 16 x budget never drops text that could have fitted, and bounds the tokenizer's work.
2. ``fit_messages``: the exact cut, in tokens, of the rendered conversation: drop the oldest turns, then
   shorten the longest remaining message (the system message included) until prompt + reply fit.
"""
from __future__ import annotations

from typing import Callable

from tutor.models.protocol import Message

MAX_CHARS_PER_TOKEN = 16
TRUNCATION_MARK = "\n[... cut to fit the model's context window ...]"
# Slack for the template's own tokens around a shortened message, and for a cut that lands mid-word (a token
# boundary can move by a few tokens when text is re-tokenized after cutting).
SLACK_TOKENS = 8


def precut(text: str, max_tokens: int) -> str:
    """``text`` cut to at most ``MAX_CHARS_PER_TOKEN * max_tokens`` characters (see the module docstring)."""
    limit = max(0, max_tokens) * MAX_CHARS_PER_TOKEN
    return text if len(text) <= limit else text[:limit]


def fit_messages(messages: list[Message], budget: int, count: Callable[[list[Message]], int],
                 count_text: Callable[[str], int], clip: Callable[[str, int], str]) -> tuple[list[Message], bool]:
    """Messages whose rendered prompt takes at most ``budget`` tokens, and whether anything was cut.

    ``count(messages)`` counts the rendered prompt, ``count_text(text)`` one text, and ``clip(text, n)`` keeps
    the first ``n`` tokens of a text. Oldest turns go first (the system message and the last message stay);
    then the longest message is shortened, keeping its beginning, until the prompt fits."""
    budget = max(1, budget)
    original = messages
    messages = [{"role": m["role"], "content": precut(m["content"], budget)} for m in original]
    cut = any(len(m["content"]) != len(o["content"]) for m, o in zip(messages, original))
    while count(messages) > budget and len(messages) > 2:
        messages.pop(1 if messages[0]["role"] == "system" else 0)
        cut = True
    mark = count_text(TRUNCATION_MARK)
    for _ in range(2 * len(messages) + 2):  # each pass shortens one message; a few passes settle the slack
        over = count(messages) - budget
        if over <= 0:
            return messages, cut
        sizes = [count_text(m["content"]) for m in messages]
        longest = max(range(len(messages)), key=sizes.__getitem__)
        keep = max(0, sizes[longest] - over - mark - SLACK_TOKENS)
        text = clip(messages[longest]["content"], keep) + TRUNCATION_MARK if keep else TRUNCATION_MARK.strip()
        messages[longest] = {"role": messages[longest]["role"], "content": text}
        cut = True
    # Only a template whose own tokens exceed the budget gets here: nothing left to cut.
    return messages, cut

