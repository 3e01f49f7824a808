"""What every tab shares: turning Gradio's message shapes into plain text, the ZeroGPU wrapper, the CSS."""
from __future__ import annotations

import importlib.util

# On a ZeroGPU Space, functions that use the GPU must be wrapped by spaces.GPU; elsewhere it is a no-op.
if importlib.util.find_spec("spaces") is not None:
    import spaces

    gpu = spaces.GPU
else:
    def gpu(fn):
        return fn

# Every event that runs the model joins this one concurrency group: with TUTOR_CONCURRENCY=1, one model call runs
# and every other learner waits in Gradio's queue, which tells each browser its place ("queue: 3/12"). Without a
# shared group each event type had its own slot and the extra calls waited on the model's lock, invisibly.
MODEL_QUEUE = "model"

EMPTY_REPLY = "(The model returned an empty reply. Try rephrasing, or type `/help`.)"

CSS = """
.tutor-note {font-size: 0.9em; opacity: 0.85}
"""


def text_of(content) -> str:
    """Gradio 6 sends message content as a string (from gradio_client) or a list of parts (from the browser)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return "\n".join(text_of(part) for part in content if text_of(part))
    return str(content)


def plain_history(history) -> list[dict]:
    return [
        {"role": m["role"], "content": text_of(m.get("content"))}
        for m in (history or [])
        if isinstance(m, dict) and m.get("role") in ("user", "assistant") and text_of(m.get("content"))
    ]
