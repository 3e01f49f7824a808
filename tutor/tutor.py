"""The conversation: what the tutor says to a learner. Imports no UI or ML framework.

``Tutor.reply(message, history, session)`` is a plain generator of text chunks. It turns chat commands
(``/lesson``, ``/hint``, ``/next``, ``/submit``...) into lesson flow and grading, and free questions into a
model answer, grounded in the readings when a retriever is available.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

from tutor import prompts
from tutor.config import Settings
from tutor.errors import TutorError
from tutor.models import ChatModel, GenerationSettings, Message

log = logging.getLogger(__name__)

EMPTY_NOTE = "Your message was empty. Ask a question, or type `/help` to see what I can do."
HELP = """Here is what I understand:

- `/lessons`: list the lessons
- `/lesson <id>`: start a lesson, e.g. `/lesson delimiters`
- `/submit <your prompt or answer>`: hand in the current exercise for grading
- `/hint`: the next hint for the current exercise
- `/next`: move on to the next exercise (or lesson)
- `/progress`: what you have done so far
- anything else: ask me a question about prompting"""


@dataclass
class Session:
    """One learner's place in the course. Small and copyable: the UI keeps one per browser tab."""

    learner: str = "guest"
    lesson_id: str | None = None
    exercise_index: int = 0
    hints_shown: int = 0
    solved: bool = False


def clip(text: str, limit: int) -> tuple[str, str | None]:
    """Cut untrusted text to ``limit`` characters; the note tells the learner it happened."""
    if len(text) <= limit:
        return text, None
    return text[:limit], (
        f"_Note: your message was longer than {limit:,} characters; I read the first {limit:,} "
        "(TUTOR_MAX_INPUT_CHARS)._\n\n"
    )


class Tutor:
    def __init__(self, settings: Settings, model: ChatModel, course=None, answerer=None):
        """``course`` runs lessons and grading (tutor.course.Course); ``answerer`` answers free questions from
        the readings (tutor.readings.grounding); both optional so the chat works on the model alone."""
        self.settings = settings
        self.model = model
        self.course = course
        self.answerer = answerer
        self.chat_settings = GenerationSettings(max_new_tokens=settings.max_new_tokens)

    def counts(self) -> dict:
        """How much course material is loaded, for `tutor info`."""
        return {
            "lessons": len(self.course.lessons) if self.course is not None else 0,
            "readings": self.answerer.readings_count() if self.answerer is not None else 0,
        }

    # -- entry point -----------------------------------------------------------------------------------
    def reply(self, message: str, history: list[Message], session: Session) -> Iterator[str]:
        message = (message or "").strip()
        if not message:
            yield EMPTY_NOTE
            return
        message, note = clip(message, self.settings.max_input_chars)
        if note:
            yield note
        try:
            if message.startswith("/"):
                yield from self.command(message, session)
            else:
                yield from self.answer(message, history, session)
        except TutorError as exc:
            yield f"\n\n**Sorry, that did not work:** {exc}"
        except Exception:  # keep serving: a failure in one reply must not take down the app
            log.exception("reply failed")
            yield "\n\n**Sorry, something went wrong on my side while answering.** Please try again."

    def command(self, message: str, session: Session) -> Iterator[str]:
        name, _, arg = message.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name == "/help":
            yield HELP
        elif self.course is None:
            yield "Lessons are not loaded in this session, so only questions and `/help` work."
        else:
            yield from self.course.command(name, arg, session)

    # -- free questions --------------------------------------------------------------------------------
    def system_prompt(self, session: Session) -> str:
        lesson = exercise = None
        if self.course is not None:
            lesson, exercise = self.course.current(session)
        return prompts.render(
            "tutor_system",
            lesson_title=lesson.title if lesson else "",
            lesson_tactic=lesson.tactic.strip() if lesson else "",
            exercise_task=exercise.task.strip() if exercise and not session.solved else "",
        )

    def answer(self, question: str, history: list[Message], session: Session) -> Iterator[str]:
        system = self.system_prompt(session)
        if self.answerer is not None:
            yield from self.answerer(question, system)
            return
        yield from self.converse(system, question, history)

    def converse(self, system: str, question: str, history: list[Message]) -> Iterator[str]:
        messages = [{"role": "system", "content": system}, *history, {"role": "user", "content": question}]
        messages, cut = self.model.fit_messages(messages, reserve=self.chat_settings.max_new_tokens)
        if cut:
            yield "_Note: our conversation was longer than the model can read, so I kept the most recent part._\n\n"
        yield from self.model.stream(messages, self.chat_settings)
