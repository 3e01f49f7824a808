"""The agent loop: LangChain's ``create_agent`` over the ReAct adapter, with one middleware for what a lesson
needs on top of LangChain's loop.

    agent = Agent(model, RunSpec(question="What is 17.5% of 2,480?", tools=("calculator",)))
    for trace in agent.run():        # a fresh Trace after every node of the graph
        ...
    messages = agent.step([], "Thought: ...\\nAction: calculator\\nAction Input: 17.5% of 2480")  # by hand

``Guard`` (the middleware):
* before each model call, stops the run at the step, time or token limit with a message that says which and
  what to change (the run's messages carry the counts, so a run resumed by hand keeps counting);
* after a reply that cannot be read, sends the reason back to the model as an error observation and loops,
  where LangChain alone would end the run (a reply without tool calls is a final answer to it);
* around each tool call, refuses an exact repeat of an earlier call (a small model's usual way of never
  answering), turns any exception into an error observation, caps the result's length and times it.

LangChain's tool node does the rest: an unknown tool name or arguments that fail the tool's schema come back
as error observations with LangChain's own wording.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, hook_config
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from tutor.agents.adapter import AGENT_SETTINGS, ContextFull, ReActChatModel
from tutor.agents.spec import Forecast, Limits, Shop
from tutor.agents.tools import build_tools
from tutor.agents.trace import Step, Trace
from tutor.errors import TutorError
from tutor.models import ChatModel, GenerationSettings

# A tool result past 600 characters (~150 tokens) would crowd the small model's prompt; the cut is marked.
RESULT_CHARS = 600
# Each step passes through about four graph nodes (limits, model, recovery or tools); 6 per step plus slack is a
# safety net under the Guard's own step limit, never the limit a learner meets.
NODES_PER_STEP = 6


@dataclass(frozen=True)
class RunSpec:
    question: str
    tools: tuple[str, ...] = ("calculator",)
    system: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)
    examples: bool | tuple[str, ...] = True
    limits: Limits = Limits()
    shop: Shop | None = None
    weather: dict[str, Forecast] | None = None


class Guard(AgentMiddleware):
    def __init__(self, limits: Limits, calls: int | None = None, timed: bool = True):
        super().__init__()
        self.limits, self.calls, self.timed, self.made = limits, calls, timed, 0

    @hook_config(can_jump_to=["end"])
    def before_model(self, state, runtime) -> dict | None:
        if self.calls is not None and self.made >= self.calls:
            return {"jump_to": "end"}  # one step by hand is done; the run stays open
        message = limit_message(self.limits, state["messages"], self.timed)
        if message:
            kind, text = message
            return {"jump_to": "end", "messages": [AIMessage(content=text, response_metadata={"limit": kind})]}
        self.made += 1
        return None

    @hook_config(can_jump_to=["model"])
    def after_model(self, state, runtime) -> dict | None:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.invalid_tool_calls and not last.tool_calls:
            bad = last.invalid_tool_calls[0]
            note = ToolMessage(content=f"Error: your reply could not be read: {bad['error']}.", status="error",
                               tool_call_id=bad["id"], name="format", response_metadata={"unreadable": True})
            return {"messages": [note], "jump_to": "model"}
        return None

    def wrap_tool_call(self, request, handler):
        started = time.monotonic()
        call = request.tool_call
        repeated = earlier_step(request.state, call)
        try:
            if repeated:  # a small model repeats its last call instead of answering: say so, do not run it again
                result = ToolMessage(content=f"Error: you already called {call['name']} with these arguments in step "
                                     f"{repeated}, and its result is above. Do not repeat a call: answer with "
                                     "'Final Answer:', or call a different tool.", name=call["name"],
                                     tool_call_id=call["id"], status="error")
            else:
                result = handler(request)
        except Exception as exc:  # any tool failure is an observation the model can react to, never a crash
            result = ToolMessage(content=f"Error: {exc}", name=call["name"], tool_call_id=call["id"], status="error")
        if isinstance(result, ToolMessage):
            text = result.text
            if len(text) > RESULT_CHARS:
                result.content = text[:RESULT_CHARS] + f" [... cut at {RESULT_CHARS} characters]"
            result.response_metadata["seconds"] = round(time.monotonic() - started, 4)
        return result


def earlier_step(state, call) -> int | None:
    """The step that already made this exact call (same tool, same arguments), if any."""
    steps = [m for m in (state or {}).get("messages", []) if isinstance(m, AIMessage) and "react" in m.response_metadata]
    for number, m in enumerate(steps, 1):
        if any(c["id"] != call["id"] and c["name"] == call["name"] and c["args"] == call["args"] for c in m.tool_calls):
            return number
    return None


def usage(messages: list[BaseMessage]) -> tuple[int, int, float]:
    """(steps, tokens, seconds of model and tool time) so far in a run's messages."""
    steps = [m for m in messages if isinstance(m, AIMessage) and "react" in m.response_metadata]
    tokens = sum((m.usage_metadata or {}).get("total_tokens", 0) for m in steps)
    seconds = sum(m.response_metadata.get("seconds", 0) for m in messages if isinstance(m, (AIMessage, ToolMessage)))
    return len(steps), tokens, seconds


def limit_message(limits: Limits, messages: list[BaseMessage], timed: bool = True) -> tuple[str, str] | None:
    steps, tokens, seconds = usage(messages)
    if steps >= limits.steps:
        return "steps", (f"Stopped: the agent used all {limits.steps} steps without a final answer. Make the "
                         "prompt lead to an answer sooner (for example, answer as soon as a tool gives the "
                         "result), or raise the step limit.")
    if timed and seconds >= limits.seconds:
        return "seconds", (f"Stopped: the run has taken {seconds:.0f} s of model and tool time, past its limit of "
                           f"{limits.seconds} s. Shorten the prompt so each step is faster, or raise the time limit.")
    if tokens >= limits.tokens:
        return "tokens", (f"Stopped: the run has used {tokens:,} tokens, past its limit of {limits.tokens:,}. "
                          "Every step re-reads the whole transcript, so shorten the system prompt and the tool "
                          "descriptions, or raise the token limit.")
    return None


class Agent:
    """``timed=False`` drops the time limit, as grading does: time depends on how busy the machine is, and the
    same spec must always get the same grade. The step and token limits are deterministic and always apply."""

    def __init__(self, model: ChatModel, spec: RunSpec, search: Callable | None = None,
                 settings: GenerationSettings = AGENT_SETTINGS, timed: bool = True):
        self.model, self.spec, self.timed = model, spec, timed
        self.settings = settings.with_(max_new_tokens=spec.limits.reply_tokens)
        self.tools = build_tools(spec.tools, shop=spec.shop, weather=spec.weather, search=search,
                                 descriptions=spec.descriptions)

    def _graph(self, messages: list[BaseMessage], replies: list[str] | None, calls: int | None):
        _, _, used = usage(messages)
        deadline = time.monotonic() + max(0.0, self.spec.limits.seconds - used) if self.timed else None
        chat = ReActChatModel(chat=self.model, settings=self.settings, examples=self.spec.examples,
                              replies=replies, deadline=deadline)
        return create_agent(chat, self.tools, system_prompt=self.spec.system or None,
                            middleware=[Guard(self.spec.limits, calls, self.timed)])

    def stream(self, messages: list[BaseMessage], replies=None, calls=None) -> Iterator[list[BaseMessage]]:
        graph = self._graph(messages, replies, calls)
        config = {"recursion_limit": NODES_PER_STEP * (self.spec.limits.steps + 1) + 10}
        latest = list(messages)
        try:
            for state in graph.stream({"messages": messages}, config, stream_mode="values"):
                latest = list(state["messages"])
                yield latest
        except (TutorError, GraphRecursionError) as exc:  # the context is full, or the model failed while writing
            kind = "context" if isinstance(exc, ContextFull) else "error"
            yield [*latest, AIMessage(content=f"Stopped: {exc}", response_metadata={"limit": kind})]

    def start(self) -> list[BaseMessage]:
        return [HumanMessage(content=self.spec.question)]

    def run(self) -> Iterator[Trace]:
        """The whole loop, from the question to a final answer or a limit."""
        for messages in self.stream(self.start()):
            yield self.trace(messages)

    def step(self, messages: list[BaseMessage], reply: str | None = None) -> list[BaseMessage]:
        """One step on an open run: ``reply`` written by the learner (or None: by the model), the tool run and its
        observation appended. Returns the run's messages, to pass back in for the next step."""
        messages = list(messages) or self.start()
        if self.trace(messages).status != "open":
            return messages
        last = messages
        for last in self.stream(messages, replies=None if reply is None else [reply], calls=1):
            pass
        return last

    def trace(self, messages: list[BaseMessage]) -> Trace:
        return trace_of(messages, self.spec)


def trace_of(messages: list[BaseMessage], spec: RunSpec) -> Trace:
    trace = Trace(question=spec.question, system=spec.system, tools=list(spec.tools))
    for m in messages:
        meta = getattr(m, "response_metadata", {}) or {}
        if isinstance(m, AIMessage) and "react" in meta:
            usage_ = m.usage_metadata or {}
            parsed = meta["react"]
            call = m.tool_calls[0] if m.tool_calls else None
            trace.steps.append(Step(
                number=len(trace.steps) + 1, by=meta.get("by", "model"), prompt=meta.get("prompt", ""),
                reply=m.text, parsed=parsed, prompt_tokens=usage_.get("input_tokens", 0),
                reply_tokens=usage_.get("output_tokens", 0), seconds=meta.get("seconds", 0.0),
                cut=meta.get("cut", False), tool=call["name"] if call else None, args=call["args"] if call else None))
            if parsed.get("kind") == "final":
                trace.answer = parsed.get("answer", "")
        elif isinstance(m, AIMessage) and "limit" in meta:
            trace.stopped, trace.message = meta["limit"], m.text
        elif isinstance(m, ToolMessage) and trace.steps:
            step = trace.steps[-1]
            step.observation, step.ok = m.text, m.status != "error"
            step.tool_seconds = meta.get("seconds", 0.0)
    return trace
