"""Lessons: the schema of an instructor's lesson file, the rubric checks, and loading with file:line errors.

A lesson file (``lessons/<id>.yaml``) is validated data: unknown keys are rejected, every problem is reported
as ``path:line: what is wrong and how to fix it``, and a bad file is skipped, never fatal, so the app serves
the rest. lessons/README.md documents the format for instructors.

    lessons = load_lessons(Path("lessons"))
    lessons.problems                       # ["lessons/foo.yaml:12: exercises[0].hints: needs at least 2 ..."]
    exercise = lessons.get("delimiters").exercise("summarize-review")
    exercise.checks[0].evaluate(prompt)    # (True, "{input} is wrapped in ``` ... ```")
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, field_validator, model_validator

from tutor import yamlsafe
from tutor.agents.spec import OWNERS as AGENT_OWNERS
from tutor.agents.spec import AgentTask
from tutor.errors import LessonError, NotFound
from tutor.yamlsafe import Problems, Strict, Text

_FLAGS = re.IGNORECASE | re.MULTILINE
Id = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
Target = Literal["prompt", "output", "answer"]


def _norm(text: str) -> str:
    """Case- and whitespace-insensitive form for substring matching."""
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------- rubric checks
class _Check(Strict):
    target: Target
    message: Text
    weight: float = Field(1.0, gt=0)
    required: bool = False

    def evaluate(self, text: str) -> tuple[bool, str]:
        """(passed, a short reason). Deterministic and pure: ``text`` is data, never instructions."""
        raise NotImplementedError

    def _fail(self) -> tuple[bool, str]:
        return False, self.message


class ContainsCheck(_Check):
    type: Literal["contains"]
    any: tuple[Text, ...] | None = Field(None, min_length=1)
    all: tuple[Text, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_list(self):
        if (self.any is None) == (self.all is None):
            raise ValueError("give exactly one of `any:` (one phrase is enough) or `all:` (every phrase needed)")
        return self

    def evaluate(self, text: str) -> tuple[bool, str]:
        hay = _norm(text)
        if self.any is not None:
            hit = next((p for p in self.any if _norm(p) in hay), None)
            return (True, f"found '{hit}'") if hit is not None else self._fail()
        if all(_norm(p) in hay for p in self.all):
            return True, "found " + ", ".join(f"'{p}'" for p in self.all)
        return self._fail()


class NotContainsCheck(_Check):
    type: Literal["not_contains"]
    any: tuple[Text, ...] = Field(min_length=1)

    def evaluate(self, text: str) -> tuple[bool, str]:
        hay = _norm(text)
        return self._fail() if any(_norm(p) in hay for p in self.any) else (True, "none of the listed phrases")


class RegexCheck(_Check):
    type: Literal["regex"]
    pattern: Text

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern, _FLAGS)
        except re.error as e:
            raise ValueError(f"is not a valid regular expression ({e}); check brackets and escape \\ . * + ? ( )")
        return pattern

    def evaluate(self, text: str) -> tuple[bool, str]:
        match = re.search(self.pattern, text, _FLAGS)  # `re` caches compiled patterns
        return (True, f"matched '{_clip(match.group(0))}'") if match else self._fail()


# (opening, closing) around {input}, tested on the non-blank text right before and after it.
_PAIRS = [
    (r"(```|~~~)[\w+-]*$", r"^(```|~~~)"), (r'"""$', r'^"""'), (r"'''$", r"^'''"),
    (r"<([A-Za-z][\w.:-]*)(\s[^<>]*)?>$", r"^</{tag}\s*>"), (r"<$", r"^>"), (r"\[$", r"^\]"),
    (r"#{3,}$", r"^#{3,}"), (r"-{3,}$", r"^-{3,}"), (r'"$', r'^"'), (r"“$", r"^”"), (r"'$", r"^'"),
]


PLACEHOLDER = "{input}"  # where the exercise's material goes in a learner's prompt
_WINDOW = 200  # characters looked at either side of it: room for a long tag and blank lines


class InputDelimitedCheck(_Check):
    type: Literal["input_delimited"]

    @field_validator("target")
    @classmethod
    def _on_prompt(cls, target: str) -> str:
        if target != "prompt":
            raise ValueError("input_delimited looks at the learner's prompt, so its target must be 'prompt'")
        return target

    def evaluate(self, text: str) -> tuple[bool, str]:
        for at in (m.start() for m in re.finditer(re.escape(PLACEHOLDER), text)):
            # A window either side keeps this linear in the text's length, however many placeholders it holds.
            end = at + len(PLACEHOLDER)
            before, after = text[max(0, at - _WINDOW):at].rstrip(), text[end:end + _WINDOW].lstrip()
            for opening, closing in _PAIRS:
                opened = re.search(opening, before)
                if opened and "{tag}" in closing:  # a closing tag must match its opening tag's name
                    closing = closing.replace("{tag}", re.escape(opened.group(1)))
                closed = opened and re.match(closing, after)
                if closed:
                    return True, f"{{input}} is wrapped in {opened.group(0)} ... {closed.group(0)}"
        return self._fail()


class JsonCheck(_Check):
    type: Literal["json"]
    keys: tuple[Text, ...] = ()

    def evaluate(self, text: str) -> tuple[bool, str]:
        value = _first_json(text, want_object=bool(self.keys))
        if value is None:
            return self._fail()
        missing = [k for k in self.keys if k not in value]
        if missing:
            return False, f"{self.message} (missing key {', '.join(map(repr, missing))})"
        return True, "valid JSON" + (f" with keys {', '.join(self.keys)}" if self.keys else "")


# "1.", "2)", "3 -", "Step 4", "Step 5:", "**Step 6 -**": a number or "Step N" opening a line.
_STEP = re.compile(r"^[ \t>*#_]*(?:step\s*\d+\b|\d+\s*[.):\-–—](?=\s|$))", _FLAGS)


class NumberedStepsCheck(_Check):
    type: Literal["numbered_steps"]
    min: int = Field(2, ge=1)

    def evaluate(self, text: str) -> tuple[bool, str]:
        found = len(_STEP.findall(text))
        return (True, f"found {found} numbered steps") if found >= self.min else self._fail()


class LengthCheck(_Check):
    type: Literal["length"]
    min_words: int | None = Field(None, ge=1)
    max_words: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_words is None and self.max_words is None:
            raise ValueError("give `min_words:`, `max_words:` or both")
        if self.min_words and self.max_words and self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        return self

    def evaluate(self, text: str) -> tuple[bool, str]:
        words = len(text.split())
        ok = (self.min_words or 0) <= words <= (self.max_words or words)
        return (True, f"{words} words") if ok else self._fail()


_CHECKS = (ContainsCheck, NotContainsCheck, RegexCheck, InputDelimitedCheck, JsonCheck, NumberedStepsCheck, LengthCheck)
Check = Annotated[Union[_CHECKS], Field(discriminator="type")]
#: check type name -> model, e.g. "contains" -> ContainsCheck
CHECK_TYPES = {get_args(cls.model_fields["type"].annotation)[0]: cls for cls in _CHECKS}


def _clip(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _first_json(text: str, want_object: bool, tries: int = 50):
    """The first JSON value that starts at a ``{`` or ``[`` (an object, if ``want_object``), else None."""
    decoder = json.JSONDecoder()
    for match in list(re.finditer(r"[\[{]", text))[:tries]:
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) or not want_object:
            return value
    return None


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
    pass_threshold: float = Field(0.6, gt=0, le=1)
    hints: tuple[Text, ...] = Field(min_length=2)
    solution: Text

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
        raise NotFound(f"There is no lesson '{lesson_id}'. Known lessons: {known}.")

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
_OWNERS = {"examples": Example, "exercises": Exercise, "weights": Weights, **CHECK_TYPES, **AGENT_OWNERS}


def load_lessons(folder: Path) -> LessonSet:
    """Every ``*.yaml``/``*.yml`` directly in ``folder``. Never raises for a bad file: it is skipped and reported."""
    folder = Path(folder)
    if not folder.is_dir():
        return LessonSet(problems=(f"{folder}: lessons folder not found; create it or set TUTOR_LESSONS_DIR",))
    return _load_files(_lesson_files(folder))


def check_paths(paths: list[Path]) -> list[str]:
    """Problems in the given lesson files and folders (``tutor lessons check``); empty means all is well."""
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
    unique = list(dict.fromkeys(files, None))
    return problems + list(_load_files(unique).problems)


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
