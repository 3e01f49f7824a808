"""The trace of an agent run: what was sent, what came back, how it was read, what the tool said.

Built from the run's messages (tutor.agents.loop), so it is the same whether the model or the learner ("You
are the model") wrote a step. ``to_json()`` is what ``tutor agent run --json`` prints; ``markdown()`` is what the
Agent lab shows; ``summary()`` is the short form that grading feedback shows.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field


@dataclass
class Step:
    number: int
    by: str  # "model", or "learner" in the "You are the model" mode
    prompt: str  # the exact text sent to the model: the chat template applied to every turn so far
    reply: str  # the raw reply
    parsed: dict  # tutor.agents.react.Parsed.as_dict(): kind "action" | "final" | "error"
    prompt_tokens: int = 0
    reply_tokens: int = 0
    seconds: float = 0.0
    cut: bool = False  # the time limit stopped the reply while it was being written
    tool: str | None = None
    args: dict | None = None
    observation: str | None = None  # the tool's result, or the error sent back instead
    ok: bool | None = None  # True: the tool ran; False: it failed, was unknown, or the reply was unreadable
    tool_seconds: float = 0.0


@dataclass
class Trace:
    question: str
    system: str
    tools: list[str]
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    stopped: str | None = None  # "steps" | "seconds" | "tokens" | "context" | "error"; None if it answered or is open
    message: str = ""  # why it stopped, and what to change

    @property
    def tokens(self) -> int:
        return sum(s.prompt_tokens + s.reply_tokens for s in self.steps)

    @property
    def seconds(self) -> float:
        return round(sum(s.seconds + s.tool_seconds for s in self.steps), 3)

    @property
    def status(self) -> str:
        if self.answer is not None:
            return "answered"
        return f"stopped ({self.stopped})" if self.stopped else "open"

    def calls(self) -> list[Step]:
        """The steps that called a tool (known or not)."""
        return [s for s in self.steps if s.tool is not None and s.parsed.get("kind") == "action"]

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(status=self.status, tokens=self.tokens, seconds=self.seconds)
        return data

    # -- for people ---------------------------------------------------------------------------------------
    def summary(self) -> str:
        """A few lines per step: what the agent did and what came back."""
        lines = []
        for s in self.steps:
            kind = s.parsed.get("kind")
            if kind == "action":
                lines.append(f"{s.number}. Action: {s.tool} {json.dumps(s.args or {}, ensure_ascii=False)}")
                lines.append(f"   Observation: {_one_line(s.observation or '')}")
            elif kind == "final":
                lines.append(f"{s.number}. Final Answer: {_one_line(s.parsed.get('answer', ''))}")
            else:
                lines.append(f"{s.number}. Unreadable reply: {_one_line(s.parsed.get('error', ''))}")
        if self.stopped:
            lines.append(self.message)
        return "\n".join(lines) or "(no steps)"

    def markdown(self) -> str:
        head = f"**{self.status.capitalize()}** after {len(self.steps)} step(s), {self.tokens:,} tokens, " \
               f"{self.seconds:.1f} s of model and tool time."
        parts = [head]
        for s in self.steps:
            parts.append(_step_markdown(s))
        if self.answer is not None:
            parts.append(f"### Final answer\n\n{_fenced(self.answer)}")
        if self.stopped:
            parts.append(f"### Stopped\n\n{self.message}")
        return "\n\n".join(parts)


def _step_markdown(s: Step) -> str:
    who = "you (as the model)" if s.by == "learner" else "the model"
    timing = f"{s.seconds:.1f} s, " if s.by == "model" else ""
    lines = [f"### Step {s.number}: written by {who}",
             f"_{timing}{s.prompt_tokens:,} prompt tokens + {s.reply_tokens:,} reply tokens_", "",
             f"<details><summary>Exact text sent to the model ({s.prompt_tokens:,} tokens)</summary>\n\n"
             f"<pre>{html.escape(s.prompt)}</pre>\n\n</details>", "", "**Raw reply:**", "", _fenced(s.reply or "(empty)")]
    if s.cut:
        lines += ["", "_The time limit stopped this reply while it was being written._"]
    kind = s.parsed.get("kind")
    if kind == "action":
        lines += ["", f"**Parsed:** call `{s.tool}` with `{json.dumps(s.args or {}, ensure_ascii=False)}`"]
    elif kind == "final":
        lines += ["", "**Parsed:** a final answer"]
    else:
        lines += ["", f"**Parse error:** {s.parsed.get('error', '')}"]
    if s.observation is not None:
        label = "Tool result" if s.ok else ("Sent back to the model" if kind == "error" else "Tool error")
        lines += ["", f"**{label}** ({s.tool_seconds * 1000:.0f} ms):" if kind == "action" else f"**{label}:**", "",
                  _fenced(s.observation)]
    return "\n".join(lines)


# The prompt sits in a <pre> inside <details>: Markdown ends an HTML block at a blank line, but a <pre> block only
# at its closing tag, so the whole prompt (blank lines and all) stays folded under its summary.


def _fenced(text: str) -> str:
    """A code block whose fence is longer than any run of backticks inside, so no text can close it early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _one_line(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
