"""Lessons: the schema of an instructor's lesson file and loading with file:line errors.

The rubric check types live in tutor.grading.checks (re-exported here, since they are part of the schema).

A lesson file (``lessons/<id>.yaml``) is validated data: unknown keys are rejected, every problem is reported
as ``path:line: what is wrong and how to fix it``, and a bad file is skipped, never fatal, so the app serves
the rest. lessons/README.md documents the format for instructors.

    lessons = load_lessons(Path("lessons"))
    lessons.problems                       # ["lessons/foo.yaml:12: exercises[0].hints: needs at least 2 ..."]
    exercise = lessons.get("delimiters").exercise("summarize-review")
    exercise.checks[0].evaluate(prompt)    # (True, "{input} is wrapped in ``` ... ```")
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from tutor import yamlsafe
from tutor.agents.spec import OWNERS as AGENT_OWNERS
from tutor.agents.spec import AgentTask
from tutor.errors import LessonError, NotFound
from tutor.grading.checks import (  # noqa: F401  (re-exported: the check types are part of the lesson schema)
    CHECK_TYPES,
    PLACEHOLDER,
    Check,
    ContainsCheck,
    InputDelimitedCheck,
    JsonCheck,
    LengthCheck,
    NotContainsCheck,
    NumberedStepsCheck,
    RegexCheck,
)
from tutor.yamlsafe import Problems, Strict, Text

Id = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]


# ---------------------------------------------------------------- lessons and exercises
class Weights(Strict):
    checks: float = Field(0.8, ge=0)
    rouge: float = Field(0.2, ge=0)
    judge: float = Field(0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _something_to_score(self):
        if self.checks + self.rouge <= 0:
            raise ValueError("checks and rouge are both 0, so nothing would be scored; give one of them a weight")
        return self


class Example(Strict):
    weak: Text
    improved: Text
    why: Text


class Sample(Strict):
    """A labelled learner submission: what a teacher reading only the task would decide, and why.

    ``tutor lessons calibrate`` grades every sample and counts agreement; ``split: heldout`` marks samples kept
    aside to measure the grader honestly (never used when tuning the checks)."""

    text: Text
    expect: Literal["pass", "fail"]
    why: Text
    #: a failing sample that is polished but misses one thing the task asks for, or holds one misconception
    near_miss: bool = False
    split: Literal["tune", "heldout"] = "tune"

    @model_validator(mode="after")
    def _near_miss_fails(self):
        if self.near_miss and self.expect == "pass":
            raise ValueError("a near miss is a submission that should fail; set `expect: fail` or drop `near_miss`")
        return self


class Exercise(Strict):
    id: Id
    kind: Literal["prompt", "answer", "agent"]
    task: Text
    input: Text | None = None
    agent: AgentTask | None = None  # kind: agent only: the agent's question, tools and expectations
    references: tuple[Text, ...] = Field(min_length=1)
    checks: tuple[Check, ...] = Field(min_length=1)
    judge: Text
    weights: Weights = Weights()
    hints: tuple[Text, ...] = Field(min_length=2)
    solution: Text
    samples: tuple[Sample, ...] = ()

    @model_validator(mode="after")
    def _consistent(self):
        problems = []
        if self.kind == "prompt" and self.input is None:
            problems.append((("input",), "a 'prompt' exercise needs `input:`, the material the learner's prompt "
                                          "runs on"))
        if (self.kind == "agent") != (self.agent is not None):
            problems.append((("agent",), "an 'agent' exercise needs `agent:` (see lessons/README.md)" if self.agent
                             is None else f"`agent:` belongs to kind 'agent' exercises, not '{self.kind}'"))
        allowed = ("prompt", "output") if self.kind in ("prompt", "agent") else ("answer",)
        for i, check in enumerate(self.checks):
            if check.target not in allowed:
                problems.append((("checks", i, "target"), f"target '{check.target}' does not fit kind "
                                 f"'{self.kind}'; use {' or '.join(map(repr, allowed))}"))
        if problems:
            raise Problems(problems)
        return self


class Lesson(Strict):
    id: Id
    title: Text
    order: int
    objectives: tuple[Text, ...] = Field(min_length=1)
    tactic: Text
    explanation: Text
    examples: tuple[Example, ...] = Field(min_length=1)
    reading_topics: tuple[Text, ...] = ()
    exercises: tuple[Exercise, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique_exercises(self):
        first: dict[str, int] = {}
        problems = []
        for i, exercise in enumerate(self.exercises):
            if exercise.id in first:
                problems.append((("exercises", i, "id"), f"exercise id '{exercise.id}' is already used by "
                                 f"exercises[{first[exercise.id]}]; give each exercise its own id"))
            first.setdefault(exercise.id, i)
        if problems:
            raise Problems(problems)
        return self

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(e.id for e in self.exercises)
        raise NotFound(f"Lesson '{self.id}' has no exercise '{exercise_id}'. Its exercises: {known}.")


@dataclass(frozen=True)
class LessonSet:
    """The lessons that loaded (sorted by order, then id) and one ``path:line: message`` per skipped file."""

    lessons: tuple[Lesson, ...] = ()
    problems: tuple[str, ...] = ()

    def get(self, lesson_id: str) -> Lesson:
        for lesson in self.lessons:
            if lesson.id == lesson_id:
                return lesson
        known = ", ".join(self.ids) or "none loaded"
        close = difflib.get_close_matches(str(lesson_id).lower(), self.ids, n=1, cutoff=0.75)
        guess = f" Did you mean `{close[0]}`?" if close else ""
        raise NotFound(f"There is no lesson '{lesson_id}'.{guess} Known lessons: {known}.")

    @property
    def ids(self) -> list[str]:
        return [lesson.id for lesson in self.lessons]

    def __iter__(self):
        return iter(self.lessons)

    def __len__(self):
        return len(self.lessons)

    def summary(self) -> list[dict]:
        """What ``tutor lessons list --json`` prints."""
        return [{"id": l.id, "title": l.title, "order": l.order,
                 "exercises": [{"id": e.id, "kind": e.kind} for e in l.exercises]} for l in self.lessons]


# ---------------------------------------------------------------- loading
#: the model that validates the value of each key (or check type), for "allowed keys here: ..." messages
_OWNERS = {"examples": Example, "exercises": Exercise, "weights": Weights, "samples": Sample, **CHECK_TYPES,
           **AGENT_OWNERS}


def load_lessons(folder: Path) -> LessonSet:
    """Every ``*.yaml``/``*.yml`` directly in ``folder``. Never raises for a bad file: it is skipped and reported."""
    folder = Path(folder)
    if not folder.is_dir():
        return LessonSet(problems=(f"{folder}: lessons folder not found; create it or set TUTOR_LESSONS_DIR",))
    return _load_files(_lesson_files(folder))


def check_paths(paths: list[Path]) -> list[str]:
    """Problems in the given lesson files and folders (``tutor lessons check``); empty means all is well."""
    files, problems = _gather(paths)
    return problems + list(_load_files(files).problems)


def _gather(paths: list[Path]) -> tuple[list[Path], list[str]]:
    files, problems = [], []
    for path in map(Path, paths):
        if path.is_dir():
            found = _lesson_files(path)
            files += found
            if not found:
                problems.append(f"{path}: no lesson files (*.yaml, *.yml) in this folder")
        elif path.is_file() and path.suffix in (".yaml", ".yml"):
            files.append(path)
        elif path.is_file():
            problems.append(f"{path}: not a lesson file; lesson files end in .yaml or .yml")
        else:
            problems.append(f"{path}: no such file or folder")
    return list(dict.fromkeys(files, None)), problems


#: ``tutor lessons check`` warns below this many labelled samples per exercise: 8 leaves room for a few sound
#: submissions in different styles, a clear fail and near misses, with a third kept aside as held out.
MIN_SAMPLES = 8


def sample_warnings(paths: list[Path]) -> list[str]:
    """Exercises (in the given lesson files and folders) with fewer than MIN_SAMPLES labelled samples, or no
    near miss among them."""
    warnings = []
    for path in _gather(paths)[0]:
        for lesson in _load_files([path]):
            for exercise in lesson.exercises:
                where = f"{path}: {lesson.id}/{exercise.id}"
                if len(exercise.samples) < MIN_SAMPLES:
                    warnings.append(f"{where} has {len(exercise.samples)} labelled samples; write at least "
                                    f"{MIN_SAMPLES} (`samples:`) so `tutor lessons calibrate` can tell whether its "
                                    "checks agree with you")
                if not any(s.near_miss for s in exercise.samples):
                    warnings.append(f"{where} has no near-miss sample; add one that misses a single thing the task "
                                    "asks for (`expect: fail` and `near_miss: true`)")
    return warnings


def _lesson_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _load_files(files: list[Path]) -> LessonSet:
    lessons: dict[str, tuple[Lesson, str]] = {}
    problems: list[str] = []
    for path in files:
        try:
            lesson, id_line = _read(path)
        except LessonError as e:
            problems += e.problems
            continue
        if lesson.id in lessons:
            problems.append(f"{path}:{id_line}: lesson id '{lesson.id}' is already used by {lessons[lesson.id][1]}; "
                            "give each lesson its own id (this file was skipped)")
            continue
        lessons[lesson.id] = (lesson, f"{path}:{id_line}")
    ordered = sorted((lesson for lesson, _ in lessons.values()), key=lambda l: (l.order, l.id))
    return LessonSet(tuple(ordered), tuple(problems))


def _read(path: Path) -> tuple[Lesson, int]:
    lesson, root = yamlsafe.read_model(path, Lesson, _OWNERS)
    return lesson, yamlsafe.locate(root, ("id",))[0]
