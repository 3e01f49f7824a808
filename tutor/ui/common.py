"""What every tab shares: turning Gradio's message shapes into plain text, the ZeroGPU wrapper, the CSS."""
from __future__ import annotations

import importlib.util
import math

# On a ZeroGPU Space, functions that use the GPU must be wrapped by spaces.GPU; elsewhere it is a no-op.
if importlib.util.find_spec("spaces") is not None:
    import spaces

    gpu = spaces.GPU
else:
    def gpu(fn):
        return fn

EMPTY_REPLY = "(The model returned an empty reply. Try rephrasing, or type `/help`.)"

CSS = """
.tutor-note {font-size: 0.9em; opacity: 0.85}
/* Lesson material and solutions in the chat wrap instead of running off the right edge under the copy icon. */
#tutor-chat pre {white-space: pre-wrap; overflow-wrap: anywhere; padding-right: 2.5em}
"""


# What one request may carry. Gradio checks none of this: the public API accepts any JSON.
MAX_PARTS = 32  # parts in one browser message (text + a few files); more is not a chat message
MAX_HISTORY = 100  # turns of history read from a request; the model sees far fewer (fit_messages)


class BadInput(ValueError):
    """A request whose shape or values cannot be used; the message says what to send instead."""


def clean(text: str, limit: int) -> str:
    """At most ``limit`` characters, with lone surrogates (invalid UTF-16 halves from JSON) replaced, so the
    tokenizer and the database only ever see valid text."""
    text = text[:limit]
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def text_of(content, limit: int) -> str:
    """Gradio 6 sends message content as a string (from gradio_client) or a list of parts (from the browser):
    ``[{"type": "text", "text": ...}]``. Anything else is refused. No recursion: a part must be a string or a
    dict, so a deeply nested list costs one pass over at most ``MAX_PARTS`` items."""
    if content is None:
        return ""
    if isinstance(content, str):
        return clean(content, limit)
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, (list, tuple)):
        raise BadInput(f"Send the message as text, not {type(content).__name__}.")
    if len(content) > MAX_PARTS:
        raise BadInput(f"A message may have at most {MAX_PARTS} parts; send the text as one string.")
    texts = []
    for part in content:
        value = part.get("text", part.get("value")) if isinstance(part, dict) else part
        if isinstance(value, str) and value:
            texts.append(value)
        elif value is not None and not isinstance(value, str):
            raise BadInput("Each part of a message must be text or {\"type\": \"text\", \"text\": ...}; "
                           "nested lists are not messages.")
    return clean("\n".join(texts), limit)


def plain_history(history, limit: int) -> list[dict]:
    """Earlier turns as ``[{"role", "content"}]``: the last ``MAX_HISTORY`` well-formed user/assistant turns."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise BadInput("history must be a list of {\"role\": \"user\" | \"assistant\", \"content\": ...}.")
    turns = []
    for m in list(history)[-MAX_HISTORY:]:
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            text = text_of(m.get("content"), limit)
            if text:
                turns.append({"role": m["role"], "content": text})
    return turns


def number(value, label: str, low: float, high: float, whole: bool = False) -> float | int:
    """A control's value, checked: a finite number in [low, high] (NaN, Infinity and text are refused)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{label} must be a number between {low:g} and {high:g}; got {str(value)[:40]!r}.") from None
    if not math.isfinite(x) or not low <= x <= high:
        raise BadInput(f"{label} must be a number between {low:g} and {high:g}; got {x:g}.")
    if whole:
        if x != int(x):
            raise BadInput(f"{label} must be a whole number; got {x:g}.")
        return int(x)
    return x
