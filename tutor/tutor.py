"""The conversation: what the tutor says to a learner. Imports no UI or ML framework.

``Tutor.reply(message, history, session)`` is a plain generator of text chunks. Chat commands (``/lesson``,
``/hint``, ``/next``, ``/submit``...) run the lesson flow and grading (tutor.course). Any other message is
classified (tutor.tutoring.moves) and answered with a tutoring move:

- asks for the solution, or is stuck: the next graduated hint, aimed at the last attempt's first failed check;
  never the solution before a pass, however often asked (tutor.tutoring.hints);
- a concept question, or a follow-up ("why?", "example please") resolved against the conversation: an answer
  from the readings with citations, then one line tying it to the exercise;
- a pasted attempt: graded when the learner asks for it ("is this right? ..."), else an offer to grade it;
- a greeting, thanks or something off-topic: one short friendly line that steers back to the lesson.

Every reply ends with something the learner can do next, and during an exercise no reply reproduces its
solution (ROUGE-L guard in tutor.tutoring.hints).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from tutor import prompts
from tutor.config import Settings
from tutor.errors import TutorError
from tutor.models import ChatModel, GenerationSettings, Message
from tutor.tutoring import replies
from tutor.tutoring.hints import guard

log = logging.getLogger(__name__)
# After a hint or a graded attempt, "why?" or "example please" asks about that, not about the readings.
AFTER_HELP = ("solution_request", "stuck", "/hint", "/submit")

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
    """One learner's place in the course and in the conversation. Small and copyable: the UI keeps one per
    browser tab, the API one per session id (tutor.tutoring.sessions)."""

    learner: str = "guest"
    lesson_id: str | None = None
    exercise_index: int = 0
    hints_shown: int = 0  # the lesson's hints shown for this exercise (restored from progress on /lesson)
    solved: bool = False
    last_failed: tuple = ()  # tutor.tutoring.hints.Miss per failed check of the last graded attempt
    hint_focus: str = ""  # the failed check the graduated hints are about...
    hint_step: int = 0  # ...and how far they have gone (1 question, 2 specific, 3 example)
    topic: str = ""  # the last question answered from the readings: what a follow-up refers to...
    topic_sources: tuple = ()  # ...and the reading it is about
    last_move: str = ""  # the intent of the last free message (tutor.tutoring.moves)


def clip(text: str, limit: int) -> tuple[str, str | None]:
    """Cut untrusted text to ``limit`` characters; the note tells the learner it happened."""
    if len(text) <= limit:
        return text, None
    return text[:limit], (
        f"_Note: your message was longer than {limit:,} characters; I read the first {limit:,} "
        "(TUTOR_MAX_INPUT_CHARS)._\n\n"
    )


class Tutor:
    def __init__(self, settings: Settings, model: ChatModel, course=None, answerer=None, moves=None):
        """``course`` runs lessons and grading (tutor.course.Course); ``answerer`` answers questions from the
        readings (tutor.readings.grounding.Answerer); ``moves`` classifies messages (tutor.tutoring.moves.
        Classifier). All optional: without them the chat falls back to the model alone."""
        self.settings = settings
        self.model = model
        self.course = course
        self.answerer = answerer
        self.moves = moves
        self.notice = ""  # one line for every learner, e.g. why the app runs on another model than asked
        self._readings: dict[str, Counter] = {}  # lesson id -> the readings its reading_topics lead to
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
                yield from self.respond(message, list(history or []), session)
        except TutorError as exc:
            yield f"\n\n**Sorry, that did not work:** {exc}"
        except Exception:  # keep serving: a failure in one reply must not take down the app
            log.exception("reply failed")
            yield "\n\n**Sorry, something went wrong on my side while answering.** Please try again."

    def command(self, message: str, session: Session) -> Iterator[str]:
        name, _, arg = message.partition(" ")
        name, arg = name.lower(), arg.strip()
        session.last_move = name
        if name == "/help":
            yield HELP
        elif self.course is None:
            yield "Lessons are not loaded in this session, so only questions and `/help` work."
        else:
            yield from self.course.command(name, arg, session)

    # -- free messages ---------------------------------------------------------------------------------
    def place(self, session: Session):
        """(lesson, exercise) in progress, exercise None when there is none or it is already solved."""
        lesson, exercise = self.course.current(session) if self.course is not None else (None, None)
        return lesson, (exercise if exercise is not None and not session.solved else None)

    def respond(self, message: str, history: list[Message], session: Session) -> Iterator[str]:
        lesson, exercise = self.place(session)
        if self.moves is None:  # no classifier: every message is a question
            yield from self.answer(message, history, session)
            return
        intent = self.moves.classify(message, history, exercise)
        log.debug("intent %s", intent.name)
        previous, session.last_move = session.last_move, intent.name
        if intent.name in ("solution_request", "stuck"):
            yield self.help(session, lesson, intent.name == "solution_request")
        elif intent.name == "attempt":
            if intent.grade_now:
                yield from self.course.submit(session, intent.rest or message)
            else:
                yield replies.offer_to_grade(exercise)
        elif intent.name in ("greeting", "off_topic"):
            yield replies.redirect(intent, lesson, exercise, replies.last_question(history) if session.topic else "")
        elif intent.name == "followup" and previous in AFTER_HELP and exercise is not None:
            yield self.help(session, lesson, False)  # "why?" after a hint or a failed attempt: the next hint
        else:
            followup = intent.name == "followup"
            query = replies.resolve(intent.rest or message, history, session, followup)
            avoid = replies.recent_replies(replies.plain(history)) if followup else ""  # "more please": new sentences
            within = session.topic_sources if followup else ()
            yield from self.answer(message, history, session, query, exercise, lesson, avoid, within)

    def help(self, session: Session, lesson, asked_for_solution: bool) -> str:
        if self.course is None or lesson is None:
            return replies.NO_EXERCISE
        return self.course.hint(session, asked_for_solution)

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

    def answer(self, question: str, history: list[Message], session: Session, query: str | None = None,
               exercise=None, lesson=None, avoid: str = "", within: tuple = ()) -> Iterator[str]:
        """An answer from the readings (or the model alone without them), guarded against giving away the
        exercise's solution, then a line tying it to the exercise and a next step."""
        system = self.system_prompt(session)
        if self.answerer is None:  # no readings index: the model alone, still guarded during an exercise
            if exercise is None:
                yield from self.converse(system, question, history)
            else:
                text, cut = guard("".join(self.converse(system, question, history)), exercise.solution)
                yield text + (replies.GUARDED if cut else "")
            return
        query = query or question
        if lesson is not None and not self.answerer.covers(query):  # try the lesson's own vocabulary too
            query = f"{query} ({', '.join(lesson.reading_topics)})"
        stream = self.answerer.stream(question, system, replies.plain(history), query, avoid, within)
        parts = []
        for chunk in stream:  # during an exercise the text is held back until the guard has read it all
            parts.append(chunk)
            if exercise is None:
                yield chunk
        result = stream.answer
        if exercise is not None:
            text, cut = guard("".join(parts), exercise.solution)
            yield text + (replies.GUARDED if cut else "")
        if result.sources:
            # the reading the search ranks first for the topic: what a follow-up stays in (the search's first hit is
            # right for 97% of learner questions, more often than the source of the answer's best sentence)
            top = self.answerer.retriever.search(query, k=1)
            session.topic, session.topic_sources = query, tuple(p.source for p in top)
        cited = {p.source for p in result.sources}
        related = lesson is not None and bool(cited & set(self.readings_of(lesson)))
        yield replies.after_answer(result, lesson, exercise, session, related, self.practise(result))
        notes = self.answerer.notes(result)
        if notes:
            yield "\n\n" + notes

    def readings_of(self, lesson) -> Counter:
        """The readings a lesson's ``reading_topics`` lead to (the best search hit for each topic), counted."""
        if lesson.id not in self._readings:
            topics = lesson.reading_topics or (lesson.title,)
            self._readings[lesson.id] = Counter(hit.source for topic in topics
                                                for hit in self.answerer.retriever.search(topic, k=1))
        return self._readings[lesson.id]

    def practise(self, result) -> tuple[str, str] | None:
        """(id, title) of the lesson whose topics lead most often to the answer's main reading."""
        if self.course is None or not result.sources:
            return None
        main = result.sources[0].source
        best = max(self.course.lessons, key=lambda l: self.readings_of(l)[main], default=None)
        return (best.id, best.title) if best is not None and self.readings_of(best)[main] else None

    def converse(self, system: str, question: str, history: list[Message]) -> Iterator[str]:
        messages = [{"role": "system", "content": system}, *history, {"role": "user", "content": question}]
        messages, cut = self.model.fit_messages(messages, reserve=self.chat_settings.max_new_tokens)
        if cut:
            yield "_Note: our conversation was longer than the model can read, so I kept the most recent part._\n\n"
        yield from self.model.stream(messages, self.chat_settings)
