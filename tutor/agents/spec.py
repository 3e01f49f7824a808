"""What an agent run is made of, as validated data: the ``agent:`` block of a ``kind: agent`` exercise, the
learner's spec (system prompt, chosen tools, tool descriptions), and the run's limits.

Framework-free (pydantic only), so the lesson loader can import it without pulling in LangChain.

A learner's spec is plain text, the same in the chat (``/submit``), the CLI and the Agent lab::

    Tools: calculator, units                 optional: which of the offered tools the agent gets
    Tool calculator: Exact arithmetic ...    optional, one line per tool: replaces its description
    You are a careful assistant ...          everything else: the system prompt
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from tutor.errors import TutorError
from tutor.yamlsafe import Problems, Strict, Text

#: Every tool in the toolbox (tutor.agents.tools), in the order the lab lists them. ``shop`` names the four shop tools.
TOOL_NAMES = ("calculator", "units", "weather", "readings", "shop_order", "shop_stock", "shop_price", "shop_refund")
GROUPS = {"shop": ("shop_order", "shop_stock", "shop_price", "shop_refund")}
# Tools whose results depend only on the exercise's own data, so a grade never changes with the readings index.
GRADABLE = tuple(name for name in TOOL_NAMES if name != "readings")
# A description is one or two sentences; 400 characters (~100 tokens) is plenty and keeps the prompt small.
MAX_DESCRIPTION_CHARS = 400


class SpecError(TutorError):
    """A learner's agent spec names a tool that is not offered, or is otherwise unusable."""


class Limits(Strict):
    """When a run stops. Checked before every model call; the reply in progress also stops at the time limit."""

    # 4 steps: one tool call, a second if the first failed, the answer, and one spare.
    steps: int = Field(4, ge=1, le=12)
    # ~5 s per step for the 135M model on 2 CPU cores (prefill ~500 tokens + ~40 written); 120 s leaves room for
    # a busy machine. 600 s is the hard ceiling a lesson may ask for.
    seconds: int = Field(120, ge=5, le=600)
    # Tokens read and written, summed over steps: each step re-reads the transcript (~500-900 tokens here).
    tokens: int = Field(6000, ge=200, le=50_000)
    # The most one reply may write: a Thought, an Action and its input fit in ~40 tokens.
    reply_tokens: int = Field(64, ge=8, le=512)


class Product(Strict):
    price: float = Field(ge=0)
    stock: int = Field(ge=0)


class Order(Strict):
    status: Text
    items: tuple[Text, ...] = Field(min_length=1)
    # Free text from the customer: untrusted, and where an exercise hides an injected instruction.
    note: Text | None = None


class Shop(Strict):
    currency: Text = "EUR"
    products: dict[str, Product] = Field(min_length=1)
    orders: dict[str, Order] = Field(default_factory=dict)


class Forecast(Strict):
    today: Text
    tomorrow: Text


class Expect(Strict):
    """What a good run does. Each item becomes one check on the trace, weighted ``weight``."""

    tools: tuple[str, ...] = ()  # each is called at least once, with arguments it accepts
    avoid: tuple[str, ...] = ()  # never called (a tool an injected instruction asks for)
    answer: float | None = None  # a number the final answer must contain ...
    tolerance: float = Field(0.01, ge=0, le=0.5)  # ... within this relative tolerance (0.01 is 1%)
    answer_any: tuple[Text, ...] | None = Field(None, min_length=1)  # or: one of these phrases
    # Light, like checks on a prompt exercise's output: the 135M default often fails to call a tool even when the
    # spec is sound, so the spec's rubric carries a pass and a good trace adds to it.
    weight: float = Field(0.5, gt=0)

    @model_validator(mode="after")
    def _something(self):
        if not (self.tools or self.avoid or self.answer is not None or self.answer_any):
            raise ValueError("expect at least one of `tools:`, `avoid:`, `answer:` or `answer_any:`")
        if self.answer is not None and self.answer_any:
            raise ValueError("give `answer:` (a number) or `answer_any:` (phrases), not both")
        return self


class AgentTask(Strict):
    """The ``agent:`` block of a ``kind: agent`` exercise."""

    question: Text  # what the user asks the agent
    tools: tuple[str, ...] = Field(min_length=1)  # the tools on offer (``shop`` for all four shop tools)
    system: Text | None = None  # a starting system prompt for the lab; the learner's spec replaces it
    # Starting tool descriptions that replace the toolbox's (vague ones, for the learner to rewrite).
    descriptions: dict[str, Text] = Field(default_factory=dict)
    # Show the model one worked example per tool (few-shot); a list names the tools that get one. A worked example
    # primes its tool: the 135M default copies the last one it saw, so leave out a tool it must not reach for.
    examples: bool | tuple[str, ...] = True
    shop: Shop | None = None
    weather: dict[str, Forecast] | None = None
    limits: Limits = Limits()
    expect: Expect

    @model_validator(mode="after")
    def _known_tools(self):
        problems = []
        try:
            offered = expand_tools(self.tools)
        except SpecError as e:
            offered = ()
            problems.append((("tools",), str(e)))
        if "readings" in offered:
            problems.append((("tools",), "the readings tool's results depend on the readings index, so it cannot be "
                             f"graded; offer only {', '.join(GRADABLE)} (the Agent lab has readings)"))
        for name in (self.examples if isinstance(self.examples, tuple) else ()):
            if offered and name not in offered:
                problems.append((("examples",), f"'{name}' is not among this exercise's tools ({', '.join(offered)})"))
        for name in self.descriptions:
            if offered and name not in offered:
                problems.append((("descriptions", name), f"'{name}' is not among this exercise's tools "
                                 f"({', '.join(offered)})"))
        for key in ("tools", "avoid"):
            for i, name in enumerate(getattr(self.expect, key)):
                if offered and name not in offered:
                    problems.append((("expect", key, i), f"'{name}' is not among this exercise's tools "
                                     f"({', '.join(offered)}); add it to `tools:` or fix the name"))
        if problems:
            raise Problems(problems)
        return self

    @property
    def offered(self) -> tuple[str, ...]:
        return expand_tools(self.tools)


def expand_tools(names) -> tuple[str, ...]:
    """Tool names in toolbox order, groups expanded and duplicates dropped; SpecError names an unknown one."""
    chosen = []
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        if name in GROUPS:
            chosen += GROUPS[name]
        elif name in TOOL_NAMES:
            chosen.append(name)
        else:
            raise SpecError(f"'{name[:40]}' is not a tool in the toolbox; the tools are "
                            f"{', '.join(TOOL_NAMES)} (and 'shop' for all four shop tools)")
    return tuple(n for n in TOOL_NAMES if n in chosen)


@dataclass(frozen=True)
class LearnerSpec:
    """What the learner decides: the system prompt, which tools, and any tool descriptions they rewrote."""

    system: str
    tools: tuple[str, ...]
    descriptions: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the spec as written, for the rubric checks


_TOOLS_LINE = re.compile(r"^\s*tools\s*:\s*(.*)$", re.I)
_TOOL_LINE = re.compile(r"^\s*tool\s+([a-z_]+)\s*:\s*(.*)$", re.I)


def parse_spec(text: str, offered: tuple[str, ...]) -> LearnerSpec:
    """Read a learner's spec; every tool it names must be one of ``offered``."""
    chosen, descriptions, system = None, {}, []
    for line in (text or "").splitlines():
        if chosen is None and (match := _TOOLS_LINE.match(line)):
            chosen = expand_tools(re.split(r"[,\s]+", match.group(1)))
            if not chosen:
                raise SpecError("the `Tools:` line lists no tools; name at least one of " + ", ".join(offered))
        elif match := _TOOL_LINE.match(line):
            name, description = match.group(1).lower(), match.group(2).strip()
            if name not in offered:
                raise SpecError(f"`Tool {name}:` describes a tool this agent does not have; its tools are "
                                + ", ".join(offered))
            if len(description) > MAX_DESCRIPTION_CHARS:
                raise SpecError(f"the description of {name} is {len(description)} characters; keep it under "
                                f"{MAX_DESCRIPTION_CHARS} (one or two sentences)")
            if description:
                descriptions[name] = description
        else:
            system.append(line)
    extra = [n for n in (chosen or ()) if n not in offered]
    if extra:
        raise SpecError(f"`Tools:` names {', '.join(extra)}, which this exercise does not offer; choose from "
                        + ", ".join(offered))
    return LearnerSpec("\n".join(system).strip(), chosen or offered, descriptions, text)


#: The model validating each key of an `agent:` block, for the loader's "allowed keys here" messages.
OWNERS = {"agent": AgentTask, "expect": Expect, "limits": Limits, "shop": Shop}
