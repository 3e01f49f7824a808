"""What every local back-end does around its token loop, framework-free: stop sequences on the streamed text,
fitting a conversation into the context window, and cancelling generation threads at interpreter exit.
"""
from __future__ import annotations

import threading
from typing import Callable, Iterator

TRUNCATION_MARK = "\n[... cut to fit the model's context window ...]"

# Generations in flight. At interpreter exit they are cancelled and waited for: a thread still inside torch or
# llama.cpp when the process tears down aborts it ("terminate called without an active exception", exit 134).
# A stream whose reader went away (a closed browser tab) is never closed, so its own `finally` cannot do this.
IN_FLIGHT: set[threading.Event] = set()


def _cancel_all() -> None:
    for event in list(IN_FLIGHT):
        event.set()


# Runs before the interpreter joins non-daemon threads (the hook concurrent.futures uses); atexit would be too late.
getattr(threading, "_register_atexit", lambda fn: None)(_cancel_all)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the earliest stop sequence, and whether one was found."""
    positions = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(positions)], True) if positions else (text, False)


def safe_prefix_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be shown now: hold back any tail that could be the start of a stop sequence."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold


def until_stop(chunks: Iterator[str], stops: tuple[str, ...]) -> Iterator[str]:
    """Re-chunk streamed text so that no stop sequence (nor the start of one) is ever shown; end at the first
    stop. The caller stops its generator when this returns."""
    shown, text = 0, ""
    for chunk in chunks:
        text += chunk
        head, stopped = cut_at_stop(text, stops)
        limit = len(head) if stopped else safe_prefix_length(text, stops)
        if limit > shown:
            yield text[shown:limit]
            shown = limit
        if stopped:
            return
    if len(text) > shown:
        yield text[shown:]


def fit_messages(messages: list[dict], reserve: int, *, window: int, render: Callable[[list[dict]], str],
                 count: Callable[[str], int], encode: Callable[[str], list[int]],
                 decode: Callable[[list[int]], str]) -> tuple[list[dict], bool]:
    """Trim a conversation so its rendered prompt plus ``reserve`` new tokens fit ``window`` tokens.

    Drops the oldest turns after the system message first; if the last message alone is still too long, keeps
    its beginning and appends TRUNCATION_MARK. Returns the messages and whether anything was cut."""
    budget = window - reserve
    messages = list(messages)
    cut = False
    while count(render(messages)) > budget and len(messages) > 2:
        messages.pop(1 if messages[0]["role"] == "system" else 0)
        cut = True
    over = count(render(messages)) - budget
    if over > 0:
        last = messages[-1]
        ids = encode(last["content"])
        # 8 tokens of slack: re-tokenizing the cut text next to the mark can merge or split a token or two.
        keep = max(0, len(ids) - over - count(TRUNCATION_MARK) - 8)
        messages[-1] = {"role": last["role"], "content": decode(ids[:keep]) + TRUNCATION_MARK}
        cut = True
    return messages, cut
