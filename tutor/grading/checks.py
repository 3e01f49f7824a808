"""The rubric check types an exercise's `checks:` list is made of, one class per type.

Each check is validated data (unknown keys rejected) with a pure ``evaluate(text) -> (passed, reason)``:
deterministic, and ``text`` is data, never instructions. ``tutor.lessons`` puts them in the exercise schema.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, field_validator, model_validator

from tutor.yamlsafe import Strict, Text

_FLAGS = re.IGNORECASE | re.MULTILINE
Target = Literal["prompt", "output", "answer"]


def _norm(text: str) -> str:
    """Case- and whitespace-insensitive form for substring matching."""
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------- rubric checks
class _Check(Strict):
    target: Target
    message: Text
    weight: float = Field(1.0, gt=0)
    #: a requirement the task states outright: failing it fails the submission, whatever the other scores
    required: bool = False
    #: what the task asks for, in a few words ("the review fenced with delimiters"), for the feedback on a
    #: failed required check: "The task asks for <asks>; your prompt does not have it yet."
    asks: Text | None = None

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
        if not match:
            return self._fail()
        # A pattern that asserts an absence (a lookahead) matches nothing: say so instead of "matched ''".
        return True, f"matched '{_clip(match.group(0))}'" if match.group(0) else "nothing in it goes against this"


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


class ConceptCheck(_Check):
    """Passes when a sentence or clause says what one of ``expresses`` says, and none holds a misconception
    (tutor.grading.concept explains the matching)."""

    type: Literal["concept"]
    expresses: tuple[Text, ...] = Field(min_length=1)
    misconceptions: tuple[Text, ...] = ()
    # WordLlama cosines: unrelated sentences score about 0.0-0.3, sentences on the same topic 0.5-0.9. The
    # [groups] carry the meaning, so the embedding only has to confirm the topic: 0.4 sits between the two.
    min_similarity: float = Field(0.4, ge=-1, le=1)
    #: how many different ``expresses`` examples must be said ("explain two ways ...": 2)
    at_least: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _enough_examples(self):
        if self.at_least > len(self.expresses):
            raise ValueError(f"at_least is {self.at_least} but `expresses` lists {len(self.expresses)} examples")
        return self

    @field_validator("expresses", "misconceptions")
    @classmethod
    def _parses(cls, examples: tuple[str, ...]) -> tuple[str, ...]:
        from tutor.grading.concept import check_syntax

        for example in examples:
            problem = check_syntax(example)
            if problem:
                raise ValueError(problem)
        return examples

    def evaluate(self, text: str) -> tuple[bool, str]:
        from tutor.grading.concept import evaluate

        said, unit = evaluate(text, self.expresses, self.misconceptions, self.min_similarity, self.at_least)
        if said is False:
            return False, f"{self.message} (this part reads as a misconception: '{_clip(unit, 80)}')"
        if said is None and unit and self.at_least > 1:
            return False, f"{self.message} (found only: '{_clip(unit, 80)}')"
        return (True, f"says it: '{_clip(unit, 80)}'") if said else self._fail()


_CHECKS = (ContainsCheck, NotContainsCheck, RegexCheck, InputDelimitedCheck, JsonCheck, NumberedStepsCheck, LengthCheck,
           ConceptCheck)
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
