"""A scripted chat model for unit tests of orchestration logic only (never used by the product)."""
from __future__ import annotations

from tutor.models import ModelInfo


class ScriptedModel:
    """Replies with the scripted strings in turn (the last one repeats) and records every prompt it saw."""

    def __init__(self, *replies: str):
        self.replies = list(replies) or [""]
        self.prompts: list[list[dict]] = []
        self.info = ModelInfo(name="scripted", adapter=None, device="cpu", dtype="none", quantization=None,
                              context_window=4096)

    def stream(self, messages, settings):
        self.prompts.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for word in reply.split(" "):
            yield word + " "

    def render(self, messages):
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)

    def count_tokens(self, text):
        return len(text.split())

    def fit_messages(self, messages, reserve):
        return list(messages), False


class RoutedModel(ScriptedModel):
    """Answers judge prompts (they ask for a VERDICT line) with ``verdict`` and everything else with ``output``."""

    def __init__(self, output: str, verdict: str):
        super().__init__(output)
        self.output, self.verdict = output, verdict

    def stream(self, messages, settings):
        self.prompts.append(messages)
        yield self.verdict if "VERDICT:" in messages[-1]["content"] else self.output
