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

from tutor.errors import TutorError
from tutor.progress import learner_id
from tutor.tutor import Session, Tutor
from tutor.tutoring.sessions import SessionError, SessionStore
from tutor.ui.common import EMPTY_REPLY, BadInput, gpu, plain_history, text_of


def ui_event(name: str) -> dict:
    """A browser event that scripts may also call (`make loadtest` drives learners through exactly these):
    hidden from the API page, callable as ``/ui_<name>`` by gradio_client."""
    return {"api_name": f"ui_{name}", "api_visibility": "undocumented"}


def _field(value, name: str, limit: int) -> str:
    """One text argument of an API call, read with the same bounds as a chat message; a refusal names it."""
    try:
        return text_of(value, limit)
    except BadInput as exc:
        raise BadInput(f"{name}: {exc}") from None


def _visible(value, name: str) -> str:
    """A lesson or exercise id from a client, bounded (ids are at most 64 characters) and printable only, so an
    error message that repeats it stays short and harmless."""
    return "".join(ch for ch in _field(value, name, 64) if ch.isprintable())


def build(demo: gr.Blocks, tutor: Tutor, limits: dict) -> None:
    """Add the tab to ``demo``, the Blocks being built. ``limits`` are the model events' queue settings."""
    # One character more than the tutor reads, so it notices an over-long message and says so.
    chars = tutor.settings.max_input_chars + 1

    @gpu
    def converse(history, session: Session, message) -> Iterator[tuple[list, Session]]:
        """The chat in the browser: typed messages and the lesson buttons share this one history."""
        session = copy.deepcopy(session) if isinstance(session, Session) else Session()
        history = list(history) if isinstance(history, list) else []
        try:
            text, prior = text_of(message, chars), plain_history(history, chars)
        except BadInput as exc:
            history += [{"role": "assistant", "content": f"I could not read that message: {exc}"}]
            yield history, session
            return
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
        try:
            text, prior = text_of(message, chars), plain_history(history, chars)
            session_id = _field(session_id, "session_id", 200)
        except BadInput as exc:
            yield f"I could not read that message: {exc}"
            return
        if not session_id:
            yield from stream(text, prior, Session(learner="api"))
            return
        try:
            with store.use(session_id) as entry:
                reply = ""
                for reply in stream(text, prior or list(entry.history), entry.session):
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
            with store.use(_field(session_id, "session_id", 200)) as entry:
                s = entry.session
                lesson, exercise = tutor.course.current(s) if tutor.course else (None, None)
                return {"lesson": lesson.id if lesson else None, "exercise": exercise.id if exercise else None,
                        "solved": s.solved, "hints_shown": s.hints_shown, "hint_step": s.hint_step,
                        "last_failed": [m.detail for m in s.last_failed], "turns": len(entry.history) // 2}
        except (SessionError, BadInput) as exc:
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
                chatbot = gr.Chatbot(label="Tutor", height=560, line_breaks=False, elem_id="tutor-chat",
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

        pending = gr.State("")
        chat_io = dict(outputs=[chatbot, session], **limits)
        for n, trigger in enumerate((textbox.submit, send_btn.click)):  # take the text, clear the box, then answer
            named = n == 0  # the two triggers run the same steps: one named pair is enough for scripts
            trigger(lambda text: ("", text), [textbox], [textbox, pending],
                    **(ui_event("take_message") if named else {"api_visibility": "private"})).then(
                converse, [chatbot, session, pending], **(ui_event("converse") if named else {"api_visibility": "private"}),
                **chat_io).then(panel, [session], [outline, progress], api_visibility="private")

        def run_command(make_command):
            """A button as a chat command: the same conversation, the same history."""
            def handler(history, session, *args):
                yield from converse(history, session, make_command(*args))
            return handler

        # Starting a lesson, a hint and moving on never call the model: they do not queue behind model calls
        # (a few milliseconds of lesson lookup and SQLite each, so no limit of their own is needed).
        course_io = dict(outputs=[chatbot, session], concurrency_limit=None)
        buttons = [
            ("start", start_btn, lambda lesson_id: f"/lesson {lesson_id or ''}".strip(), [lesson], course_io),
            ("hint", hint_btn, lambda: "/hint", [], course_io),
            ("next", next_btn, lambda: "/next", [], course_io),
            ("submit", submit_btn, lambda text: f"/submit {text or ''}".strip(), [submission], chat_io),
        ]
        for event, button, make_command, extra, io in buttons:
            button.click(run_command(make_command), [chatbot, session, *extra], **ui_event(event),
                         **io).then(panel, [session], [outline, progress], api_visibility="private")
        gr.api(chat, api_name="chat", **limits)

        @gpu
        def submit(learner: str, lesson_id: str, exercise_id: str, text: str) -> str:
            """Grade a submission to one exercise and record it under `learner` (the name the learner types in
            the app), exactly as the Submit button does: the attempt is saved before the feedback comes back.
            Returns the feedback as Markdown."""
            if tutor.course is None:
                return "Lessons are not loaded in this app, so there is nothing to submit to."
            try:
                name = learner_id(_field(learner, "learner", 200), "")
                if not name:
                    return "learner: give a name with letters or digits; the attempt is saved under it."
                session = Session(learner=name)
                tutor.course.go_to(session, _visible(lesson_id, "lesson_id"), _visible(exercise_id, "exercise_id"))
                submission = _field(text, "text", chars)
            except (BadInput, TutorError) as exc:
                return str(exc)
            return "".join(tutor.reply(f"/submit {submission}", [], session))

        gr.api(submit, api_name="submit", **limits)
        gr.api(new_session, api_name="new_session")
        gr.api(session_state, api_name="session")

        def identify(stored_id, learner_name, session: Session):
            # The browser-local id comes from the client like any other input: clean and bound it as a name,
            # and start a fresh one if nothing usable is left.
            stored_id = learner_id(stored_id, "") or f"learner-{uuid.uuid4().hex[:8]}"
            session = copy.deepcopy(session) if session else Session()
            session.learner = learner_id(learner_name, stored_id)
            return stored_id, session, *panel(session)

        identity = ([browser_id, name, session], [browser_id, session, outline, progress])
        demo.load(identify, *identity, api_visibility="private")
        name.blur(identify, *identity, **ui_event("identify"))
        refresh_btn.click(panel, [session], [outline, progress], **ui_event("progress"))

        def refresh_lessons():
            if tutor.course:
                tutor.course.refresh()
            return gr.update(choices=lesson_choices())

        lesson.focus(refresh_lessons, None, [lesson], api_visibility="private")
