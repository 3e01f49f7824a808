"""The Tutor tab: the chat, the lesson panel with the course outline, and the public API.

API (gradio_client): `/new_session() -> session_id`; `/chat(message, history, session_id) -> reply` (streamed),
where a session id keeps the learner's place between calls, so `/lesson`, `/hint` and `/submit` follow a
lesson; `/session(session_id) -> where the learner is`. Sessions live in a bounded server-side store
(tutor.tutoring.sessions)."""
from __future__ import annotations

import copy
import uuid
from typing import Iterator

import gradio as gr

from tutor.progress import learner_id
from tutor.tutor import Session, Tutor
from tutor.tutoring.sessions import SessionError, SessionStore
from tutor.ui.common import EMPTY_REPLY, gpu, plain_history, text_of


def build(demo: gr.Blocks, tutor: Tutor) -> None:
    """Add the tab to ``demo``, the Blocks being built."""

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

    store = SessionStore()

    @gpu
    def chat(message: str, history: list[dict] | None = None, session_id: str = "") -> Iterator[str]:
        """Ask the tutor (or run a /command) and stream the reply. `history` is earlier turns as
        [{"role": "user" | "assistant", "content": str}] (content may also be a list of text parts).
        `session_id` (from /new_session) keeps your place between calls: /lesson, /hint, /submit and follow-up
        questions continue where the last call left off, and without `history` the server's copy of the
        recent conversation is used. Empty: a one-off session."""
        text = text_of(message)
        if not session_id:
            yield from stream(text, plain_history(history), Session(learner="api"))
            return
        try:
            with store.use(session_id) as entry:
                reply = ""
                for reply in stream(text, plain_history(history) or list(entry.history), entry.session):
                    yield reply
                entry.remember(text, reply)
        except SessionError as exc:
            yield f"**Session problem:** {exc}"

    def stream(text: str, history: list[dict], session: Session) -> Iterator[str]:
        reply = ""
        for chunk in tutor.reply(text, history, session):
            reply += chunk
            yield reply
        if not reply:
            yield EMPTY_REPLY

    def new_session() -> str:
        """Start an API session; pass the returned id as `session_id` to /chat and /session. Keep it private:
        whoever has it continues the session."""
        return store.create()

    def session_state(session_id: str) -> dict:
        """Where an API session is: lesson, exercise, whether it is solved, hints shown, the last attempt's
        failed checks. `{"error": ...}` for an unknown or malformed id."""
        try:
            with store.use(session_id) as entry:
                s = entry.session
                lesson, exercise = tutor.course.current(s) if tutor.course else (None, None)
                return {"lesson": lesson.id if lesson else None, "exercise": exercise.id if exercise else None,
                        "solved": s.solved, "hints_shown": s.hints_shown, "hint_step": s.hint_step,
                        "last_failed": [m.detail for m in s.last_failed], "turns": len(entry.history) // 2}
        except SessionError as exc:
            return {"error": str(exc)}

    def lesson_choices() -> list[tuple[str, str]]:
        return [(f"{l.title} ({l.id})", l.id) for l in tutor.course.lessons] if tutor.course else []

    def progress_markdown(session: Session) -> str:
        return tutor.course.progress.markdown(session.learner) if tutor.course else ""

    def panel(session: Session) -> tuple[str, str]:
        """The course outline and the progress table, refreshed after every message."""
        session = session or Session()
        return (tutor.course.outline(session) if tutor.course else ""), progress_markdown(session)

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
                with gr.Accordion("Course outline", open=True):
                    outline = gr.Markdown()
                with gr.Accordion("Progress", open=False):
                    progress = gr.Markdown()
                    refresh_btn = gr.Button("Refresh progress", size="sm")
                reload_btn = gr.Button("Reload lessons", size="sm")
                reload_status = gr.Markdown()

        pending = gr.State("")
        chat_io = dict(outputs=[chatbot, session], concurrency_limit=tutor.settings.concurrency)
        for trigger in (textbox.submit, send_btn.click):  # take the text, clear the box, then answer
            trigger(lambda text: ("", text), [textbox], [textbox, pending], api_visibility="private").then(
                converse, [chatbot, session, pending], api_visibility="private", **chat_io).then(
                panel, [session], [outline, progress], api_visibility="private")

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
                         **chat_io).then(panel, [session], [outline, progress], api_visibility="private")
        gr.api(chat, api_name="chat", concurrency_limit=tutor.settings.concurrency)
        gr.api(new_session, api_name="new_session")
        gr.api(session_state, api_name="session")

        def identify(stored_id, learner_name, session: Session):
            stored_id = stored_id or f"learner-{uuid.uuid4().hex[:8]}"
            session = copy.deepcopy(session) if session else Session()
            session.learner = learner_id(learner_name, stored_id)
            return stored_id, session, *panel(session)

        identity = ([browser_id, name, session], [browser_id, session, outline, progress])
        demo.load(identify, *identity, api_visibility="private")
        name.blur(identify, *identity, api_visibility="private")
        refresh_btn.click(panel, [session], [outline, progress], api_visibility="private")

        def reload_lessons():
            message = tutor.course.reload_message() if tutor.course else "No course is loaded."
            return gr.update(choices=lesson_choices()), message

        reload_btn.click(reload_lessons, None, [lesson, reload_status], api_name="reload_lessons")
