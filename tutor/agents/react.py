"""The ReAct text format: the chat turns an agent step sends, and the parser of the model's reply.

Models without native tool calling (the 135M default among them) call a tool by writing text::

    Thought: This needs arithmetic, so I use the calculator.
    Action: calculator
    Action Input: 17.5% of 2480

and answer with ``Final Answer: ...``. Generation stops at ``Observation:`` so the model cannot invent the
tool's result; the loop runs the tool and sends its result back, fenced, as the next user turn.

The parser is forgiving where a small model is sloppy but the intent is plain (``**Action:**``, a tool named
in a sentence, ``calculator(2+2)`` on one line, several arguments separated by commas or spaces), and strict
where guessing would hide a mistake: a reply with no ``Action:`` and no ``Final Answer:`` is a parse error
whose reason goes back to the model as the observation. Framework-free: tutor.agents.adapter turns ``Parsed``
into LangChain tool calls.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from tutor import prompts
from tutor.models import Message

#: Stop sequences: the model must not write the Observation (or a fenced result) itself.
STOP = ("Observation:", "<tool_result", "</tool_result>")
# An input is a short expression, an id or a few words; 500 characters (~125 tokens) is far more than any needs.
MAX_INPUT_CHARS = 500
# Words a model puts between positional values ("26.2 miles to km"); dropped only when there are too many values.
_FILLERS = {"to", "in", "into", "from", "of", "for", "and", "on"}
_LABEL = re.compile(r"^[ \t>*#_\-]*(thought|action[ _]?input|action|final[ _]?answer|observation)[ \t]*\d*"
                    r"[ \t]*\**[ \t]*[:：][ \t]*\**[ \t]*(.*)$", re.I)
_NAME = r"[A-Za-z_][\w\-]*"
# Tags that fence a tool result in the prompt; removed from results so a result cannot close its own fence.
_FENCE = re.compile(r"</?\s*tool_result[^>]*>", re.I)


@dataclass(frozen=True)
class ToolSpec:
    """What the prompt and the parser need to know about a tool."""

    name: str
    description: str
    args: tuple[str, ...] = ()  # argument names, in the schema's order
    required: tuple[str, ...] = ()
    example: dict | None = None  # {question, thought, input, result, answer}

    @property
    def input_hint(self) -> str:
        if self.example:
            return self.example["input"]
        return ", ".join(self.args) if self.args else "(nothing)"


@dataclass(frozen=True)
class Parsed:
    """One reply, read: an action (tool + arguments), a final answer, or an error with its reason."""

    kind: str  # "action" | "final" | "error"
    thought: str = ""
    tool: str = ""
    args: dict = field(default_factory=dict)
    input: str = ""
    answer: str = ""
    error: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}) or k == "kind"}


# ---------------------------------------------------------------- the turns of a step
def system_message(system: str, tools: list[ToolSpec]) -> Message:
    listed = [{"name": t.name, "description": " ".join(t.description.split()), "input": t.input_hint} for t in tools]
    return {"role": "system", "content": prompts.render("agent_system", system=system.strip(), tools=listed)}


def question_message(question: str) -> Message:
    return {"role": "user", "content": prompts.render("agent_question", question=question.strip())}


def observation_message(tool: str, result: str, error: bool = False) -> Message:
    return {"role": "user", "content": prompts.render("agent_observation", tool=tool, result=fence(result),
                                                      error=error)}


def step_text(thought: str, tool: str, input: str) -> str:
    return f"Thought: {thought}\nAction: {tool}\nAction Input: {input}"


def final_text(answer: str) -> str:
    return f"Thought: I know the answer.\nFinal Answer: {answer}"


def demonstration(tools: list[ToolSpec]) -> list[Message]:
    """One worked exchange per tool that has an example: few-shot for the format, as real chat turns."""
    turns = []
    for t in tools:
        if t.example:
            e = t.example
            turns += [question_message(e["question"]),
                      {"role": "assistant", "content": step_text(e["thought"], t.name, e["input"])},
                      observation_message(t.name, e["result"]),
                      {"role": "assistant", "content": final_text(e["answer"])}]
    return turns


def fence(text: str) -> str:
    """A tool result made safe to put between <tool_result> tags."""
    return _FENCE.sub("", str(text)).strip() or "(empty result)"


# ---------------------------------------------------------------- reading a reply
def parse(reply: str, tools: dict[str, ToolSpec]) -> Parsed:
    """Read one reply. Whichever of ``Action:`` and ``Final Answer:`` comes first decides what it is."""
    sections = _sections(reply or "")
    if not (reply or "").strip():
        return Parsed("error", error="the reply is empty; write a Thought, then an Action or a Final Answer")
    thought = next((text for label, text in sections if label == "thought"), "")
    first = next(((i, label) for i, (label, _) in enumerate(sections) if label in ("action", "final answer")), None)
    if first is None:
        return Parsed("error", thought=thought, error="the reply has no 'Action:' line and no 'Final Answer:' "
                      "line; call a tool with 'Action: <tool>' and 'Action Input: <input>', or answer with "
                      "'Final Answer: <answer>'")
    at, label = first
    if label == "final answer":
        answer = sections[at][1].strip()
        if not answer:
            return Parsed("error", thought=thought, error="'Final Answer:' is empty; write the answer after it")
        return Parsed("final", thought=thought, answer=answer)
    name, inline = _split_action(sections[at][1], tools)
    if not name:
        said = " ".join(sections[at][1].split())[:60]
        return Parsed("error", thought=thought, error="the 'Action:' line must hold only a tool name, one of: "
                      + ", ".join(tools) + (f"; it says '{said}'" if said else ""))
    given = next((text for label, text in sections[at + 1:] if label == "action input"), None)
    text = _clean(inline if inline is not None else given or "")
    if not text.startswith("{"):  # only JSON spans lines; below the input line a small model starts inventing
        text = text.split("\n", 1)[0].strip()
    if len(text) > MAX_INPUT_CHARS:
        return Parsed("error", thought=thought, tool=name, error=f"the Action Input is {len(text):,} characters "
                      f"long; tools take at most {MAX_INPUT_CHARS}")
    spec = tools.get(name)
    if spec is None:  # an unknown tool is the tool node's to report, with the list of real ones
        return Parsed("action", thought=thought, tool=name, args={"input": text}, input=text)
    if not text and spec.required:
        return Parsed("error", thought=thought, tool=name, error=f"no 'Action Input:' after 'Action: {name}'; "
                      f"write one such as 'Action Input: {spec.input_hint}'")
    try:
        args = to_args(text, spec)
    except ValueError as e:
        return Parsed("error", thought=thought, tool=name, input=text, error=str(e))
    return Parsed("action", thought=thought, tool=name, args=args, input=text)


def to_args(text: str, spec: ToolSpec) -> dict:
    """A tool's keyword arguments from its Action Input: JSON, ``key=value`` pairs, or values in schema order."""
    if not spec.args:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise ValueError(f"the Action Input looks like JSON but is not valid JSON ({e.msg}); write plain "
                             f"values such as {spec.input_hint}") from None
        if not isinstance(value, dict):
            raise ValueError("the Action Input JSON must be an object such as {\"" + spec.args[0] + "\": ...}")
        return value
    pairs = [p for p in re.split(r",\s*(?=\w+\s*[=:])", text) if p.strip()]
    keyed = [re.match(r"^\s*(\w+)\s*[=:]\s*(.*)$", p, re.S) for p in pairs]
    if all(m and m.group(1) in spec.args for m in keyed):
        return {m.group(1): _clean(m.group(2)) for m in keyed}
    if len(spec.args) == 1:
        return {spec.args[0]: text}
    # "Lisbon, tomorrow: rain, 17 °C": after the input a small model often starts writing the result, behind a
    # colon. The values before the colon are tried when the whole line has too many.
    for candidate in dict.fromkeys((text, text.split(":", 1)[0])):
        parts = [_clean(p) for p in (candidate.split(",") if "," in candidate else candidate.split())]
        parts = [p for p in parts if p]
        if len(parts) > len(spec.args):
            parts = [p for p in parts if p.lower() not in _FILLERS]
        if len(spec.required) <= len(parts) <= len(spec.args):
            return dict(zip(spec.args, parts))
    parts = [p for p in (text.split(",") if "," in text else text.split()) if p.strip()]
    expected = len(spec.required) if len(spec.required) == len(spec.args) else \
        f"{len(spec.required)} to {len(spec.args)}"
    raise ValueError(f"{spec.name} takes {expected} values ({', '.join(spec.args)}) separated by commas, such as "
                     f"'{spec.input_hint}'; the Action Input has {len(parts)}")


def _sections(reply: str) -> list[tuple[str, str]]:
    """(label, text) for each labelled line, with the unlabelled lines that follow it joined on."""
    sections: list[list[str]] = []
    for line in reply.splitlines():
        match = _LABEL.match(line)
        if match:
            label = re.sub(r"[ _]+", " ", match.group(1).lower())
            sections.append([label, match.group(2)])
        elif sections:
            sections[-1][1] += "\n" + line
    return [(label, text.strip()) for label, text in sections]


def _split_action(line: str, tools: dict[str, ToolSpec]) -> tuple[str, str | None]:
    """(tool name, input written on the same line or None). ``calculator(2+2)`` and ``calculator: 2+2`` both work."""
    line = line.strip().strip("`*\"' .")
    if match := re.match(rf"^({_NAME})\s*\((.*)\)$", line, re.S):
        return _tool_name(match.group(1)), match.group(2)
    if match := re.match(rf"^({_NAME})\s*:\s*(.+)$", line, re.S):
        return _tool_name(match.group(1)), match.group(2)
    if re.fullmatch(_NAME, line):  # one word: a tool, or a name the tool node reports as unknown
        return _tool_name(line), None
    # A sentence ("I will use the calculator") counts when it names exactly one tool; otherwise it is an error.
    named = {_tool_name(w) for w in re.findall(_NAME, line)} & set(tools)
    return (named.pop() if len(named) == 1 else ""), None


def _tool_name(word: str) -> str:
    return word.strip().lower().replace("-", "_")


def _clean(text: str) -> str:
    """Strip code fences, backticks and quotes a model wraps around an input."""
    text = text.strip()
    text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1]
    return text.strip()
