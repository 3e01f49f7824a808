"""The Playground: run any prompt on the model with every generation setting, and show exactly what the model
received (chat template applied) and how many tokens each part took. Framework-free; the UI and CLI call it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from tutor.models import ChatModel, GenerationSettings


@dataclass
class PlaygroundRun:
    reply: str
    rendered: str  # the exact text the model received
    prompt_tokens: int
    reply_tokens: int
    context_window: int
    max_prompt_tokens: int
    note: str = ""

    def counts_markdown(self) -> str:
        used = self.prompt_tokens + self.reply_tokens
        text = (
            f"**Tokens:** prompt {self.prompt_tokens:,} · reply {self.reply_tokens:,} · "
            f"total {used:,}; prompts may take {self.max_prompt_tokens:,} tokens here (TUTOR_MAX_PROMPT_TOKENS) "
            f"of the model's {self.context_window:,}-token context window"
        )
        return f"{text}\n\n{self.note}" if self.note else text


def parse_stops(text: str) -> tuple[str, ...]:
    """One stop sequence per line; ``\\n`` written literally means a newline."""
    return tuple(line.replace("\\n", "\n") for line in (text or "").splitlines() if line.strip())


def run(model: ChatModel, system: str, prompt: str, settings: GenerationSettings) -> Iterator[PlaygroundRun]:
    """Stream the reply; every update carries the rendered prompt and the running token counts."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise ValueError("The prompt is empty: write something for the model to respond to.")
    messages = ([{"role": "system", "content": system.strip()}] if (system or "").strip() else []) + [
        {"role": "user", "content": prompt}
    ]
    messages, cut = model.fit_messages(messages, reserve=settings.max_new_tokens)
    rendered = model.render(messages)
    prompt_tokens = model.count_tokens(rendered)
    note = ("The prompt was longer than the token budget allows and was cut where the text says so." if cut else "")
    reply = ""
    state = PlaygroundRun("", rendered, prompt_tokens, 0, model.info.context_window, model.info.max_prompt_tokens,
                          note)
    yield state
    for chunk in model.stream(messages, settings):
        reply += chunk
        state.reply = reply
        state.reply_tokens = model.count_tokens(reply)
        yield state
