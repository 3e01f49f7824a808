"""The browser app: the only package that imports Gradio. ``build_app(tutor)`` returns the Blocks.

Handlers are thin: they normalise Gradio's shapes into plain strings and call the framework-free tutor code.
"""
from __future__ import annotations

import copy
import importlib.util
import uuid
from typing import Iterator

import gradio as gr

from tutor import playground
from tutor.errors import TutorError
from tutor.models import GenerationSettings, inspectable
from tutor.progress import learner_id
from tutor.tutor import Session, Tutor
from tutor.ui import instruments as instrument_tabs

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


def build_app(tutor: Tutor) -> gr.Blocks:
    info = tutor.model.info
    adapter = f" + adapter `{info.adapter}`" if info.adapter else ""
    quant = f", {info.quantization}" if info.quantization else ""

    @gpu
    def converse(history, session: Session, message) -> Iterator[tuple[list, Session]]:
        """The chat in the browser: typed messages and the lesson buttons share this one history."""
        session = copy.deepcopy(session) if session else Session()
        text = text_of(message)
        history = list(history or [])
        prior = plain_history(history)
        history += [{"role": "user", "content": text or " "}, {"role": "assistant", "content": ""}]
        reply = ""
        for chunk in tutor.reply(text, prior, session):
            reply += chunk
            history[-1] = {"role": "assistant", "content": reply}
            yield history, session
        if not reply:
            history[-1] = {"role": "assistant", "content": EMPTY_REPLY}
            yield history, session

    @gpu
    def chat(message: str, history: list[dict] | None = None) -> Iterator[str]:
        """Ask the tutor (or run a /command) and stream the reply. `history` is earlier turns as
        [{"role": "user" | "assistant", "content": str}] (content may also be a list of text parts)."""
        reply = ""
        for chunk in tutor.reply(text_of(message), plain_history(history), Session(learner="api")):
            reply += chunk
            yield reply
        if not reply:
            yield EMPTY_REPLY

    @gpu
    def run_playground(system, prompt, max_new_tokens, temperature, top_k, top_p,
                       repetition_penalty, frequency_penalty, presence_penalty, stop, seed):
        try:
            settings = GenerationSettings(
                max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_k=int(top_k),
                top_p=float(top_p), repetition_penalty=float(repetition_penalty),
                frequency_penalty=float(frequency_penalty), presence_penalty=float(presence_penalty),
                stop=playground.parse_stops(stop), seed=int(seed) if seed not in (None, "", -1) else None,
            )
            for state in playground.run(tutor.model, text_of(system), text_of(prompt), settings):
                yield state.reply, state.rendered, state.counts_markdown()
        except (ValueError, TutorError) as exc:
            yield f"Cannot run: {exc}", "", ""

    def lesson_choices() -> list[tuple[str, str]]:
        return [(f"{l.title} ({l.id})", l.id) for l in tutor.course.lessons] if tutor.course else []

    with gr.Blocks(title="Prompt-engineering tutor") as demo:
        gr.Markdown(
            f"# Prompt-engineering tutor\nModel: **{info.name}**{adapter} on {info.device} ({info.dtype}{quant}). "
            "Type `/help` in the chat to see the commands."
        )
        session = gr.State(Session())
        browser_id = gr.BrowserState("", storage_key="prompt-tutor-learner")
        with gr.Tab("Tutor", id="tutor"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Tutor", height=560, line_breaks=False,
                                         placeholder="Ask about prompting, or pick a lesson on the right")
                    with gr.Row():
                        textbox = gr.Textbox(placeholder="Ask a question, or /lesson delimiters", show_label=False,
                                             scale=5, autofocus=True, max_lines=8)
                        send_btn = gr.Button("Send", variant="primary", scale=1, min_width=80)
                with gr.Column(scale=2):
                    name = gr.Textbox(label="Your name (your progress is saved under it)", max_length=64)
                    lesson = gr.Dropdown(lesson_choices(), label="Lesson", value=None)
                    with gr.Row():
                        start_btn = gr.Button("Start lesson", variant="primary")
                        hint_btn = gr.Button("Hint")
                        next_btn = gr.Button("Next")
                    submission = gr.Textbox(label="Your submission", lines=6,
                                            placeholder="Your prompt (use {input} for the material) or your answer")
                    submit_btn = gr.Button("Submit for grading", variant="primary")
                    with gr.Accordion("Progress", open=False):
                        progress = gr.Markdown()
                        refresh_btn = gr.Button("Refresh progress", size="sm")
                    reload_btn = gr.Button("Reload lessons", size="sm")
                    reload_status = gr.Markdown()

            def progress_markdown(session: Session) -> str:
                return tutor.course.progress.markdown(session.learner) if tutor.course else ""

            pending = gr.State("")
            chat_io = dict(outputs=[chatbot, session], concurrency_limit=tutor.settings.concurrency)
            for trigger in (textbox.submit, send_btn.click):  # take the text, clear the box, then answer
                trigger(lambda text: ("", text), [textbox], [textbox, pending], api_visibility="private").then(
                    converse, [chatbot, session, pending], api_visibility="private", **chat_io).then(
                    progress_markdown, [session], [progress], api_visibility="private")

            def run_command(make_command):
                """A button as a chat command: the same conversation, the same history."""
                def handler(history, session, *args):
                    yield from converse(history, session, make_command(*args))
                return handler

            buttons = [
                (start_btn, lambda lesson_id: f"/lesson {lesson_id or ''}".strip(), [lesson]),
                (hint_btn, lambda: "/hint", []),
                (next_btn, lambda: "/next", []),
                (submit_btn, lambda text: f"/submit {text or ''}".strip(), [submission]),
            ]
            for button, make_command, extra in buttons:
                button.click(run_command(make_command), [chatbot, session, *extra], api_visibility="private",
                             **chat_io).then(progress_markdown, [session], [progress], api_visibility="private")
            gr.api(chat, api_name="chat", concurrency_limit=tutor.settings.concurrency)

            def identify(stored_id, learner_name, session: Session):
                stored_id = stored_id or f"learner-{uuid.uuid4().hex[:8]}"
                session = copy.deepcopy(session) if session else Session()
                session.learner = learner_id(learner_name, stored_id)
                return stored_id, session, progress_markdown(session)

            demo.load(identify, [browser_id, name, session], [browser_id, session, progress], api_visibility="private")
            name.blur(identify, [browser_id, name, session], [browser_id, session, progress], api_visibility="private")
            refresh_btn.click(progress_markdown, [session], [progress], api_visibility="private")

            def reload_lessons():
                message = tutor.course.reload_message() if tutor.course else "No course is loaded."
                return gr.update(choices=lesson_choices()), message

            reload_btn.click(reload_lessons, None, [lesson, reload_status], api_name="reload_lessons")

        with gr.Tab("Playground", id="playground"):
            gr.Markdown("Run any prompt on the model. Every generation setting is here; the box on the right shows "
                        "the exact text the model received, with its chat template applied.")
            with gr.Row():
                with gr.Column(scale=3):
                    system = gr.Textbox(label="System message (optional)", lines=2)
                    prompt = gr.Textbox(label="Prompt", lines=6, placeholder="Summarize the text in ```...```")
                    run_btn = gr.Button("Run", variant="primary")
                    output = gr.Textbox(label="Model output", lines=8, interactive=False)
                    counts = gr.Markdown()
                with gr.Column(scale=2):
                    max_new = gr.Slider(1, 1024, value=128, step=1, label="Max new tokens")
                    temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)")
                    top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
                    top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p (1 = off)")
                    repetition = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty (1 = off)")
                    frequency = gr.Slider(0, 2, value=0, step=0.05, label="Frequency penalty")
                    presence = gr.Slider(0, 2, value=0, step=0.05, label="Presence penalty")
                    stop = gr.Textbox(label="Stop sequences (one per line)", lines=2)
                    seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0)
            rendered = gr.Code(label="Exact text sent to the model", language=None, interactive=False)
            run_btn.click(
                run_playground,
                [system, prompt, max_new, temperature, top_k, top_p, repetition, frequency, presence, stop, seed],
                [output, rendered, counts],
                api_name="playground",
                concurrency_limit=tutor.settings.concurrency,
            )
        if inspectable(tutor.model):
            instrument_tabs.add_tabs(tutor.model, gpu, tutor.settings.concurrency)
    demo.queue(max_size=tutor.settings.queue_size, default_concurrency_limit=tutor.settings.concurrency)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and CSS (they belong to launch() in Gradio 6)."""
    return demo.launch(css=CSS, theme=gr.themes.Soft(), **kwargs)
