"""The lesson flow: presenting lessons and exercises, graduated hints, submissions and moving on.

Driven by chat commands (``/lesson``, ``/hint``, ``/submit``, ``/next``...) and by the UI's buttons, which
send the same commands. Framework-free; the learner's place lives in a ``Session``.
"""
from __future__ import annotations

import logging
from typing import Iterator

from tutor.config import Settings
from tutor.errors import NotFound
from tutor.grading import Grader, feedback_markdown
from tutor.lessons import Exercise, Lesson, LessonSet, load_lessons
from tutor.progress import Progress

log = logging.getLogger(__name__)


class Course:
    def __init__(self, settings: Settings, grader: Grader, progress: Progress):
        self.settings = settings
        self.grader = grader
        self.progress = progress
        self.lessons = LessonSet()
        self.reload()

    def reload(self) -> list[str]:
        """Re-read the lessons folder; bad files are logged and skipped, the rest served. Returns the problems."""
        self.lessons = load_lessons(self.settings.lessons_dir)
        for problem in self.lessons.problems:
            log.warning("skipped lesson file: %s", problem)
        return list(self.lessons.problems)

    # -- where the learner is ---------------------------------------------------------------------------
    def current(self, session) -> tuple[Lesson | None, Exercise | None]:
        if not session.lesson_id:
            return None, None
        try:
            lesson = self.lessons.get(session.lesson_id)
        except NotFound:  # the lesson was removed by a reload
            return None, None
        if 0 <= session.exercise_index < len(lesson.exercises):
            return lesson, lesson.exercises[session.exercise_index]
        return lesson, None

    # -- commands --------------------------------------------------------------------------------------
    def command(self, name: str, arg: str, session) -> Iterator[str]:
        handlers = {
            "/lessons": lambda: self.list_lessons(),
            "/lesson": lambda: self.start(session, arg),
            "/hint": lambda: self.hint(session),
            "/next": lambda: self.next(session),
            "/progress": lambda: self.progress.markdown(session.learner),
            "/reload": lambda: self.reload_message(),
        }
        if name == "/submit":
            yield from self.submit(session, arg)
        elif name in handlers:
            yield handlers[name]()
        else:
            yield f"I do not know the command `{name}`. Type `/help` to see the commands."

    def list_lessons(self) -> str:
        if not len(self.lessons):
            return "No lessons are loaded. An instructor can add YAML files to the lessons folder."
        rows = [f"- `{l.id}`: {l.title} ({len(l.exercises)} exercises)" for l in self.lessons]
        return "**Lessons** (start one with `/lesson <id>`):\n\n" + "\n".join(rows)

    def reload_message(self) -> str:
        problems = self.reload()
        text = f"Reloaded: {len(self.lessons)} lesson(s) available."
        if problems:
            text += "\n\nSkipped files (fix them and reload):\n" + "\n".join(f"- `{p}`" for p in problems)
        return text

    def start(self, session, lesson_id: str) -> str:
        if not lesson_id:
            return "Which lesson? " + self.list_lessons()
        lesson = self.lessons.get(lesson_id.strip())
        session.lesson_id, session.exercise_index = lesson.id, 0
        return self.introduce(lesson) + "\n\n---\n\n" + self.pose(session)

    def introduce(self, lesson: Lesson) -> str:
        objectives = "\n".join(f"- {o}" for o in lesson.objectives)
        example = lesson.examples[0]
        return (
            f"## {lesson.title}\n\n**You will learn to:**\n{objectives}\n\n**The tactic:** {lesson.tactic.strip()}\n\n"
            f"{lesson.explanation.strip()}\n\n### Worked example\n\n**A weak prompt:**\n```\n{example.weak.strip()}\n```\n"
            f"**A better prompt:**\n```\n{example.improved.strip()}\n```\n**Why it is better:** {example.why.strip()}"
        )

    def pose(self, session) -> str:
        lesson, exercise = self.current(session)
        if exercise is None:
            return "Pick a lesson with `/lesson <id>` to get an exercise."
        session.hints_shown = self.progress.hints_used(session.learner, lesson.id, exercise.id)
        session.solved = exercise.id in self.progress.passed_exercises(session.learner, lesson.id)
        how = ("Write a **prompt**; put `{input}` where the material goes. I will run it on the model and grade "
               "the prompt and what it produces." if exercise.kind == "prompt"
               else "Write your **answer** in your own words.")
        material = f"\n\n**Material:**\n```\n{exercise.input.strip()}\n```" if exercise.input else ""
        return (f"### Exercise {session.exercise_index + 1} of {len(lesson.exercises)}: `{exercise.id}`\n\n"
                f"{exercise.task.strip()}{material}\n\n{how}\n\nSend it with `/submit <your text>` (or the Submit "
                f"button). `/hint` gives a hint ({len(exercise.hints)} available).")

    def hint(self, session) -> str:
        lesson, exercise = self.current(session)
        if exercise is None:
            return "There is no exercise in progress. Start one with `/lesson <id>`."
        if session.hints_shown < len(exercise.hints):
            session.hints_shown += 1
            self.progress.record_hint(session.learner, lesson.id, exercise.id, session.hints_shown)
            n, total = session.hints_shown, len(exercise.hints)
            more = " Ask again for the next one." if n < total else " That was the last hint; ask once more to see a model solution."
            return f"**Hint {n} of {total}:** {exercise.hints[n - 1].strip()}\n\n_{more.strip()}_"
        return self.solution(exercise, "You have seen every hint")

    def solution(self, exercise: Exercise, why: str) -> str:
        return f"{why}, so here is a model solution:\n\n```\n{exercise.solution.strip()}\n```\n\nType `/next` to go on."

    def submit(self, session, text: str) -> Iterator[str]:
        lesson, exercise = self.current(session)
        if exercise is None:
            yield "There is no exercise to submit to. Start one with `/lesson <id>`."
            return
        if not text.strip():
            yield ("Your submission is empty, so there is nothing to grade. Write it after the command: "
                   "`/submit <your prompt or answer>`.")
            return
        yield ("_Running your prompt on the model and grading it…_\n\n" if exercise.kind == "prompt"
               else "_Grading your answer…_\n\n")
        grade = self.grader.grade(exercise, text)
        self.progress.record_attempt(session.learner, lesson.id, exercise.id, grade.score, grade.passed,
                                     session.hints_shown)
        yield feedback_markdown(grade)
        if grade.passed:
            session.solved = True
            if self.progress.passed_exercises(session.learner, lesson.id) >= {e.id for e in lesson.exercises}:
                self.progress.mark_completed(session.learner, lesson.id)
                yield f"\n\n🎉 You have completed **{lesson.title}**."
            yield "\n\n" + self.solution(exercise, "Well done")
        else:
            yield "\n\nFix what the checks point out and `/submit` again, or ask for a `/hint`."

    def next(self, session) -> str:
        lesson, _ = self.current(session)
        if lesson is None:
            return "Start a lesson first: " + self.list_lessons()
        if session.exercise_index + 1 < len(lesson.exercises):
            session.exercise_index += 1
            return self.pose(session)
        ids = self.lessons.ids
        position = ids.index(lesson.id)
        if position + 1 < len(ids):
            return f"That was the last exercise of **{lesson.title}**. On to the next lesson.\n\n---\n\n" + self.start(
                session, ids[position + 1])
        session.lesson_id = None
        return "That was the last exercise of the last lesson: you have finished the course. 🎓"
