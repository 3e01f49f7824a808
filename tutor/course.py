"""The lesson flow: presenting lessons and exercises, graduated hints, submissions and moving on.

Driven by chat commands (``/lesson``, ``/hint``, ``/submit``, ``/next``...) and by the UI's buttons, which
send the same commands. Framework-free; the learner's place lives in a ``Session``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

from tutor.config import Settings
from tutor.errors import NotFound
from tutor.grading import Grade, Grader, feedback_markdown
from tutor.lessons import Exercise, Lesson, LessonSet, load_lessons
from tutor.markdown import fenced
from tutor.progress import Progress
from tutor.tutoring.hints import Coach, misses_of

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0


def folder_stamp(folder: Path) -> tuple:
    """What changes when a lesson file is added, edited or removed."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(folder).glob("*.y*ml")))
    except OSError:
        return ()


class Course:
    def __init__(self, settings: Settings, grader: Grader, progress: Progress, coach: Coach | None = None):
        """``coach`` gives the graduated hints (tutor.tutoring.hints); the default one has no readings index."""
        self.settings = settings
        self.grader = grader
        self.progress = progress
        self.coach = coach or Coach()
        self.lessons = LessonSet()
        self._stamp: tuple = ()
        self._checked = 0.0
        self.reload()

    def reload(self) -> list[str]:
        """Re-read the lessons folder; bad files are logged and skipped, the rest served. Returns the problems."""
        self._stamp = folder_stamp(self.settings.lessons_dir)
        self.lessons = load_lessons(self.settings.lessons_dir)
        for problem in self.lessons.problems:
            log.warning("skipped lesson file: %s", problem)
        return list(self.lessons.problems)

    def refresh(self) -> None:
        """Pick up lesson files an instructor added, changed or removed: the folder's listing (names, sizes,
        modification times) is compared at most once every ``REFRESH_SECONDS``, so a busy class does not stat
        the folder on every message. Bad files are logged for the instructor (`tutor lessons check` shows them);
        learners only ever see the valid lessons."""
        now = time.monotonic()
        if now - self._checked < REFRESH_SECONDS:
            return
        self._checked = now
        if folder_stamp(self.settings.lessons_dir) != self._stamp:
            self.reload()

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
        }
        self.refresh()
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

    def outline(self, session) -> str:
        """The course as a list: a mark on each completed lesson and passed exercise, an arrow at the current one."""
        if not len(self.lessons):
            return "No lessons are loaded."
        passed = self.progress.passed_by_lesson(session.learner)
        completed = set(self.progress.completed_lessons(session.learner))
        lines = [f"**Course outline**: {len(completed & set(self.lessons.ids))} of {len(self.lessons)} lessons "
                 "completed (✓ done, → current)", ""]
        for lesson in self.lessons:
            done = passed.get(lesson.id, set())
            mark = "✓ " if lesson.id in completed else "→ " if lesson.id == session.lesson_id else ""
            count = sum(e.id in done for e in lesson.exercises)
            lines.append(f"- {mark}**{lesson.title}** (`{lesson.id}`): {count}/{len(lesson.exercises)}")
            for n, exercise in enumerate(lesson.exercises):
                here = lesson.id == session.lesson_id and n == session.exercise_index
                mark = "✓ " if exercise.id in done else "→ " if here else ""
                lines.append(f"    - {mark}`{exercise.id}`")
        return "\n".join(lines)

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
            f"{lesson.explanation.strip()}\n\n### Worked example\n\n**A weak prompt:**\n{fenced(example.weak.strip())}\n"
            f"**A better prompt:**\n{fenced(example.improved.strip())}\n**Why it is better:** {example.why.strip()}"
        )

    def pose(self, session) -> str:
        lesson, exercise = self.current(session)
        if exercise is None:
            return "Pick a lesson with `/lesson <id>` to get an exercise."
        session.hints_shown = self.progress.hints_used(session.learner, lesson.id, exercise.id)
        session.solved = exercise.id in self.progress.passed_exercises(session.learner, lesson.id)
        session.last_failed, session.hint_focus, session.hint_step = (), "", 0  # a new exercise: a fresh start
        how = {"prompt": "Write a **prompt**; put `{input}` where the material goes. I will run it on the model and "
                         "grade the prompt and what it produces.",
               "agent": "Write the agent's **system prompt**. You may add a `Tools: a, b` line to choose its tools "
                        "and `Tool <name>: <description>` lines to describe them. I will run the agent on the model "
                        "and grade your spec and its trace (the **Agent lab** tab shows every step)."
               }.get(exercise.kind, "Write your **answer** in your own words.")
        material = f"\n\n**Material:**\n{fenced(exercise.input.strip())}" if exercise.input else ""
        if exercise.agent:
            material = (f"\n\n**The user asks the agent:** {exercise.agent.question.strip()}\n\n**Tools on offer:** "
                        + ", ".join(f"`{name}`" for name in exercise.agent.offered))
        return (f"### Exercise {session.exercise_index + 1} of {len(lesson.exercises)}: `{exercise.id}`\n\n"
                f"{exercise.task.strip()}{material}\n\n{how}\n\nSend it with `/submit <your text>` (or the Submit "
                f"button). `/hint` gives a hint ({len(exercise.hints)} available).")

    def hint(self, session, asked_for_solution: bool = False) -> str:
        """The next graduated hint (tutor.tutoring.hints). The model solution only ever comes after a pass."""
        lesson, exercise = self.current(session)
        if exercise is None:
            return "There is no exercise in progress. Start one with `/lesson <id>`."
        if session.solved:
            return ("You have already passed this exercise, so here is the model solution to compare with yours:"
                    f"\n\n{fenced(exercise.solution.strip())}\n\n**Next:** type `/next` to go on.")
        before = session.hints_shown
        text = self.coach.hint(session, lesson, exercise, self.lessons, asked_for_solution)
        if before < session.hints_shown <= len(exercise.hints):
            self.progress.record_hint(session.learner, lesson.id, exercise.id, session.hints_shown)
        return text

    def solution(self, exercise: Exercise, why: str) -> str:
        return f"{why}, so here is a model solution:\n\n{fenced(exercise.solution.strip())}\n\nType `/next` to go on."

    def go_to(self, session, lesson_id: str, exercise_id: str) -> Exercise:
        """Put the session on one exercise (the API and `tutor grade --learner` submit this way)."""
        lesson = self.lessons.get(str(lesson_id).strip())
        exercise = lesson.exercise(str(exercise_id).strip())
        session.lesson_id, session.exercise_index = lesson.id, lesson.exercises.index(exercise)
        self.pose(session)  # loads the hints already seen and whether it was solved
        return exercise

    def grade_and_record(self, session, text: str) -> tuple[Grade, bool]:
        """Grade the session's exercise and store the attempt (and the lesson's completion, when this pass
        completes it) in one transaction. Returns the grade and whether the lesson is now complete."""
        lesson, exercise = self.current(session)
        grade = self.grader.grade(exercise, text)
        completed = self.progress.record_attempt(
            session.learner, lesson.id, exercise.id, grade.score, grade.passed, session.hints_shown,
            failed_checks=[c.name for c in grade.checks if not c.passed],
            lesson_exercises=[e.id for e in lesson.exercises])
        return grade, completed

    def submit(self, session, text: str) -> Iterator[str]:
        lesson, exercise = self.current(session)
        if exercise is None:
            yield "There is no exercise to submit to. Start one with `/lesson <id>`."
            return
        if not text.strip():
            yield ("Your submission is empty, so there is nothing to grade. Write it after the command: "
                   "`/submit <your prompt or answer>`.")
            return
        yield {"prompt": "_Running your prompt on the model and grading it…_\n\n",
               "agent": "_Running your agent on the model (a few steps) and grading its trace…_\n\n"}.get(
            exercise.kind, "_Grading your answer…_\n\n")
        # The attempt is committed before any feedback is sent: an answer the learner saw is never lost,
        # even if this process dies right after.
        grade, completed = self.grade_and_record(session, text)
        session.last_failed = () if grade.passed else misses_of(grade)
        yield feedback_markdown(grade)
        if grade.passed:
            session.solved = True
            if completed:
                yield f"\n\n🎉 You have completed **{lesson.title}**."
            yield "\n\n" + self.solution(exercise, "Well done")
        elif session.last_failed:
            yield (f"\n\n**The first thing to fix:** {session.last_failed[0].detail.strip()}\n\n**Next:** fix that "
                   "and `/submit` again, or ask for a `/hint` about it.")
        else:
            yield "\n\n**Next:** improve your score and `/submit` again, or ask for a `/hint`."

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
