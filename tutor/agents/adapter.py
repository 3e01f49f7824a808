"""A LangChain chat model over the tutor's own ChatModel, so LangChain's agent loop can drive it.

The tutor's models have no native tool calling, so ``bind_tools`` keeps the tools' names, descriptions and
argument schemas, and each call writes the ReAct transcript (tutor.agents.react) as chat turns, generates a
reply (stopping at ``Observation:``), and reads it back into an ``AIMessage``: a ``tool_calls`` entry for an
action, an ``invalid_tool_calls`` entry with the reason for a reply it cannot read, plain content for a final
answer. The exact prompt text (chat template applied), the raw reply, the parse and the timing ride along in
``response_metadata`` so the trace can show every one of them.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from tutor.agents import react
from tutor.errors import TutorError
from tutor.models import GREEDY, GenerationSettings

# Greedy, so the same spec always gets the same trace and grade. No repetition penalty: a ReAct reply must
# repeat the labels and tool names of the prompt, which a penalty pushes the model away from (measured on the
# 135M default: with 1.1 it wrote "Actions:" instead of "Action:").
AGENT_SETTINGS = GREEDY.with_(max_new_tokens=64, repetition_penalty=1.0)


class ContextFull(TutorError):
    """The next step's prompt no longer fits the model's context window."""


class ReActChatModel(BaseChatModel):
    """``chat`` is a tutor ChatModel. ``replies`` (the "You are the model" mode) are used, in order, instead of
    generating. ``deadline`` (time.monotonic()) stops a reply that is still being written."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chat: Any = Field(exclude=True)
    settings: GenerationSettings = AGENT_SETTINGS
    examples: bool | tuple[str, ...] = True  # worked examples for every tool, none, or the tools named
    tools: tuple[react.ToolSpec, ...] = ()
    replies: list[str] | None = None
    deadline: float | None = None

    @property
    def _llm_type(self) -> str:
        return "tutor-react-text"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> "ReActChatModel":
        return self.model_copy(update={"tools": tuple(tool_spec(t) for t in tools)})

    def transcript(self, messages: list[BaseMessage]) -> list[dict]:
        """The tutor-format chat turns for these LangChain messages: system (tools + format), worked examples,
        the question, then each reply and its observation."""
        system, turns, asked = "", [], False
        for m in messages:
            if isinstance(m, SystemMessage):
                system = m.text
            elif isinstance(m, HumanMessage):
                turns.append(react.question_message(m.text) if not asked else {"role": "user", "content": m.text})
                asked = True
            elif isinstance(m, AIMessage):
                turns.append({"role": "assistant", "content": m.text})
            elif isinstance(m, ToolMessage):
                turns.append(react.observation_message(m.name or "tool", m.text, m.status == "error"))
        shown = [t for t in self.tools if self.examples is True or (self.examples and t.name in self.examples)]
        shots = react.demonstration(shown)
        return [react.system_message(system, list(self.tools)), *shots, *turns]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                  **kwargs: Any) -> ChatResult:
        turns = self.transcript(messages)
        rendered = self.chat.render(turns)
        prompt_tokens = self.chat.count_tokens(rendered)
        window = self.chat.info.context_window
        if self.replies is None and prompt_tokens + self.settings.max_new_tokens > window:
            raise ContextFull(f"the next step's prompt is {prompt_tokens:,} tokens; with room for a "
                              f"{self.settings.max_new_tokens}-token reply it does not fit the model's "
                              f"{window:,}-token context window. Use fewer steps or shorter tool results.")
        started = time.monotonic()
        cut = False
        if self.replies is not None:
            reply, by = (self.replies.pop(0) if self.replies else ""), "learner"
        else:
            reply, cut = self._complete(turns, stop)
            by = "model"
        seconds = round(time.monotonic() - started, 3) if by == "model" else 0.0
        parsed = react.parse(reply, {t.name: t for t in self.tools})
        step = sum(isinstance(m, AIMessage) for m in messages) + 1
        call_id = f"step-{step}"
        calls, invalid = [], []
        if parsed.kind == "action":
            calls = [tool_call(name=parsed.tool, args=parsed.args, id=call_id)]
        elif parsed.kind == "error":
            invalid = [invalid_tool_call(name=parsed.tool or None, args=parsed.input or None, id=call_id,
                                         error=parsed.error)]
        reply_tokens = self.chat.count_tokens(reply) if reply else 0
        message = AIMessage(
            content=reply, tool_calls=calls, invalid_tool_calls=invalid,
            response_metadata={"react": parsed.as_dict(), "prompt": rendered, "by": by, "seconds": seconds,
                               "cut": cut},
            usage_metadata={"input_tokens": prompt_tokens, "output_tokens": reply_tokens,
                            "total_tokens": prompt_tokens + reply_tokens},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _complete(self, turns: list[dict], stop: list[str] | None) -> tuple[str, bool]:
        """The model's reply, and whether the deadline cut it short."""
        stops = tuple(dict.fromkeys((*self.settings.stop, *react.STOP, *(stop or ()))))
        stream = self.chat.stream(turns, self.settings.with_(stop=stops))
        chunks, cut = [], False
        try:
            for chunk in stream:
                chunks.append(chunk)
                if self.deadline is not None and time.monotonic() > self.deadline:
                    cut = True
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:  # stops the generation thread when the reply was cut
                close()
        return "".join(chunks).strip(), cut


def tool_spec(tool: Any) -> react.ToolSpec:
    """Name, description and argument names of any LangChain tool (or function, or tool dict)."""
    function = convert_to_openai_tool(tool)["function"]
    parameters = function.get("parameters") or {}
    example = (tool.metadata or {}).get("example") if isinstance(tool, BaseTool) else None
    return react.ToolSpec(name=function["name"], description=function.get("description") or "",
                          args=tuple(parameters.get("properties") or {}), required=tuple(parameters.get("required") or ()),
                          example=example)
