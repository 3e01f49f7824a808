"""The Agent lab tab: give an agent a system prompt, tools and tool descriptions, run it on the model, and read
the trace step by step; or be the model yourself and let the lab run the tools."""
from __future__ import annotations

import gradio as gr
from pydantic import ValidationError

from tutor.agents.loop import Agent, RunSpec
from tutor.agents.spec import TOOL_NAMES, Limits, expand_tools, parse_spec
from tutor.errors import TutorError
from tutor.grading import feedback_markdown
from tutor.tutor import Tutor
from tutor.ui.common import BadInput, gpu, text_of

EXAMPLE_QUESTION = "A desk fan costs 39.90 EUR. How much is it with 15% off?"
EXAMPLE_SYSTEM = ("You are a shop assistant. Never do arithmetic in your head: use the calculator for every "
                  "calculation, then give the result with its currency.")
HAND_PLACEHOLDER = "Thought: I need to compute 15% off 39.90.\nAction: calculator\nAction Input: 39.90 * 0.85"


def build(tutor: Tutor, limit: dict) -> None:
    """``limit``: the model events' queue settings (one concurrency group for every model call)."""
    model, settings, course = tutor.model, tutor.settings, tutor.course
    retriever = getattr(tutor.answerer, "retriever", None)
    search = retriever.search if retriever is not None else None

    def text(value) -> str:
        """A field from the browser or a script, read with the app's bounds (one character over the limit, so
        the length checks below can say it is too long)."""
        try:
            return text_of(value, settings.max_input_chars + 1)
        except BadInput as exc:
            raise TutorError(str(exc)) from None

    def agent_exercises() -> list[tuple[str, str]]:
        if course is None:
            return []
        return [(f"{l.title}: {e.id}", f"{l.id}/{e.id}") for l in course.lessons for e in l.exercises
                if e.kind == "agent"]

    def exercise_of(key: str | None):
        if not key or course is None:
            return None
        lesson_id, _, exercise_id = key.partition("/")
        return course.lessons.get(lesson_id).exercise(exercise_id)

    def spec_of(key, question, system, tools, descriptions, steps, seconds, tokens, examples) -> RunSpec:
        """The run the widgets describe; TutorError with what to fix when they do not make one."""
        question, system = text(question).strip(), text(system).strip()
        if not question:
            raise TutorError("The question is empty: write what the user asks the agent.")
        for name, value in (("question", question), ("system prompt", system)):
            if len(value) > settings.max_input_chars:
                raise TutorError(f"The {name} is {len(value):,} characters; the limit is {settings.max_input_chars:,}.")
        chosen = expand_tools(tools or [])
        if not chosen:
            raise TutorError("Choose at least one tool.")
        described = parse_spec(text(descriptions), chosen)
        if described.system:
            raise TutorError("Each line in the tool descriptions box starts with `Tool <name>:`, for example "
                             "`Tool calculator: Exact arithmetic.`; put other text in the system prompt.")
        try:
            limits = Limits(steps=int(steps), seconds=min(int(seconds), settings.agent_max_seconds),
                            tokens=int(tokens))
        except (TypeError, ValueError, ValidationError) as exc:
            raise TutorError(f"A limit is out of range: {_first_error(exc)}.") from None
        task = exercise_of(key).agent if key else None
        return RunSpec(question=question, tools=chosen, system=system, descriptions=described.descriptions,
                       examples=bool(examples), limits=limits, shop=task.shop if task else None,
                       weather=task.weather if task else None)

    def shown(agent: Agent, messages) -> tuple[str, dict, str]:
        trace = agent.trace(messages)
        note = {"open": "The run is open: write the next step yourself, or let the model write it."}.get(
            trace.status, "")
        return trace.markdown(), trace.to_json(), note

    @gpu
    def run(key, question, system, tools, descriptions, steps, seconds, tokens, examples):
        try:
            agent = Agent(model, spec_of(key, question, system, tools, descriptions, steps, seconds, tokens,
                                         examples), search=search)
            messages = agent.start()
            for messages in agent.stream(messages):
                yield (*shown(agent, messages), messages)
        except TutorError as exc:
            yield f"**Cannot run:** {exc}", {}, "", []

    @gpu
    def step(reply, messages, key, question, system, tools, descriptions, steps, seconds, tokens, examples):
        """One step on the open run: ``reply`` written by the learner, or by the model when it is None."""
        try:
            agent = Agent(model, spec_of(key, question, system, tools, descriptions, steps, seconds, tokens,
                                         examples), search=search)
            if reply is not None and not text(reply).strip():
                raise TutorError("Write your step first: a Thought, then an Action and an Action Input, or a "
                                 "Final Answer.")
            if reply is not None and len(text(reply)) > settings.max_input_chars:
                raise TutorError(f"Your step is {len(text(reply)):,} characters; keep it under "
                                 f"{settings.max_input_chars:,}.")
            messages = agent.step(messages or [], None if reply is None else text(reply))
            return (*shown(agent, messages), messages)
        except TutorError as exc:
            return f"**Cannot take the step:** {exc}", {}, "", messages or []

    def grade(key, system, tools, descriptions, progress=gr.Progress()):
        exercise = exercise_of(key)
        if exercise is None or course is None:
            return "Load an agent exercise first (the menu at the top), then grade your spec against it."
        # The one long action here that cannot stream: the agent runs to its end before the trace is graded.
        progress(0, desc=f"Running your agent on the model (at most {exercise.agent.limits.steps} steps), "
                          "then grading its trace")
        lines = [f"Tools: {', '.join(tools or exercise.agent.offered)}", text(descriptions).strip(),
                 text(system).strip()]
        try:
            result = course.grader.grade(exercise, "\n".join(line for line in lines if line))
        except TutorError as exc:
            return f"**Cannot grade:** {exc}"
        return feedback_markdown(result)

    def load(key):
        exercise = exercise_of(key)
        if exercise is None:
            return (gr.update(),) * 8
        task = exercise.agent
        return (f"**Exercise `{exercise.id}`:** {exercise.task.strip()}", task.question.strip(),
                (task.system or "").strip(), list(task.offered),
                "\n".join(f"Tool {name}: {about}" for name, about in task.descriptions.items()), task.limits.steps,
                min(task.limits.seconds, settings.agent_max_seconds), task.limits.tokens)

    with gr.Tab("Agent lab", id="agent-lab"):
        gr.Markdown("Build a tool-using agent and watch it work. Each step shows the **exact text sent to the "
                    "model**, its raw reply, how the reply was read (or why it could not be), and the tool's result. "
                    "The agent is LangChain's agent loop over this app's model, reading replies in the ReAct format "
                    "(Thought / Action / Action Input / Final Answer).")
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Row():
                    exercise = gr.Dropdown(agent_exercises(), label="Agent exercise (optional)", value=None, scale=3)
                    load_btn = gr.Button("Load", scale=1, min_width=60)
                exercise_md = gr.Markdown()
                question = gr.Textbox(label="Question for the agent", value=EXAMPLE_QUESTION, lines=2)
                system = gr.Textbox(label="System prompt", value=EXAMPLE_SYSTEM, lines=5)
                tools = gr.CheckboxGroup(list(TOOL_NAMES), value=["calculator"], label="Tools")
                descriptions = gr.Textbox(label="Tool descriptions (optional; one `Tool <name>: <description>` "
                                                "line replaces a tool's own)", lines=3,
                                          placeholder="Tool calculator: Exact arithmetic; use it for every sum.")
                with gr.Accordion("Limits and examples", open=False):
                    d = Limits()
                    steps = gr.Slider(1, 12, value=d.steps, step=1, label="Most steps")
                    top = max(5, settings.agent_max_seconds)
                    seconds = gr.Slider(5, top, value=min(d.seconds, top),
                                        step=5, label="Most seconds of model and tool time")
                    tokens = gr.Slider(200, 20_000, value=d.tokens, step=100, label="Most tokens (prompt + reply, "
                                       "summed over steps)")
                    examples = gr.Checkbox(value=True, label="Show the model a worked example per tool (few-shot)")
                with gr.Row():
                    run_btn = gr.Button("Run agent", variant="primary")
                    grade_btn = gr.Button("Grade as exercise")
            with gr.Column(scale=3):
                note = gr.Markdown()
                trace_md = gr.Markdown("Run the agent to see its trace here.")
                with gr.Accordion("Trace as JSON", open=False):
                    trace_json = gr.JSON()
        with gr.Accordion("You are the model", open=False):
            gr.Markdown("Write the model's next reply yourself. The lab reads it exactly as it reads the model's, "
                        "runs the tool, and adds the Observation; then write the next step, or hand over to the "
                        "model. A step on an answered or stopped run starts nothing: press **Start over** first.")
            hand = gr.Textbox(label="Your next step", lines=4, placeholder=HAND_PLACEHOLDER)
            with gr.Row():
                hand_btn = gr.Button("Send my step", variant="primary")
                model_btn = gr.Button("Let the model write the next step")
                reset_btn = gr.Button("Start over")
        messages = gr.State([])
        spec_inputs = [exercise, question, system, tools, descriptions, steps, seconds, tokens, examples]
        outputs = [trace_md, trace_json, note, messages]
        run_btn.click(run, spec_inputs, outputs, api_name="agent_run", **limit)
        hand_btn.click(step, [hand, messages, *spec_inputs], outputs, api_name="agent_step", **limit)
        model_btn.click(lambda *a: step(None, *a), [messages, *spec_inputs], outputs, api_visibility="private",
                        **limit)
        reset_btn.click(lambda: ("Started over: the next step is the first.", {}, "", []), None, outputs,
                        api_visibility="private")
        grade_btn.click(grade, [exercise, system, tools, descriptions], [trace_md], api_name="agent_grade", **limit)
        load_btn.click(load, [exercise], [exercise_md, question, system, tools, descriptions, steps, seconds, tokens],
                       api_visibility="private")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{err['loc'][0]} {err['msg'].lower()}"
    return str(exc)
