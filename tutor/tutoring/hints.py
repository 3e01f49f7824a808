"""Graduated hints aimed at what the learner's last attempt missed, and the guard that keeps any reply from
handing over the exercise's solution.

After a failed submission the hints are about its first failed check (required checks first, then rubric order):

1. where the attempt falls short (the check's own words) and a guiding question: the lesson's hint that reads
   closest to that check and is phrased as a question;
2. something more specific: the next closest lesson hint, and what the readings say about the technique;
3. an example from a *different* task that shows the technique (a worked example of another lesson, for a
   prompt exercise; the readings' own sentences, for a written answer);
4. after that, nothing new: a nudge to try, submit, or move on. Never the solution.

Without a graded attempt the lesson's own hints come in order, then the example, then the nudge. The model
solution is shown only after a pass (tutor.course), never here, however often the learner asks.

Everything is chosen by WordLlama vectors and ROUGE, with no model call, so it works the same on any model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from tutor.markdown import fenced

# A reply whose ROUGE-L against the solution reaches 0.4 (F-measure), or that holds half of the solution's words
# in order (LCS recall 0.5), gives the solution away. Candidate examples must stay far below: 0.3.
REVEAL_F, REVEAL_RECALL, EXAMPLE_MAX_F = 0.4, 0.5, 0.3


@dataclass(frozen=True)
class Miss:
    """One failed check of the learner's last graded attempt, in the words the learner saw."""

    name: str
    detail: str
    required: bool = False


def misses_of(grade) -> tuple[Miss, ...]:
    """The failed checks of a tutor.grading.Grade, required ones first, each group in rubric order."""
    failed = [c for c in grade.checks if not c.passed]
    failed.sort(key=lambda c: not getattr(c, "required", False))
    return tuple(Miss(c.name, c.detail, bool(getattr(c, "required", False))) for c in failed)


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def overlap(text: str, solution: str):
    """ROUGE-L of ``text`` against ``solution`` (precision, recall, fmeasure)."""
    return _scorer().score(solution, text)["rougeL"]


def reveals(text: str, solution: str) -> bool:
    if not text.strip() or not solution.strip():
        return False
    score = overlap(text, solution)
    return score.fmeasure >= REVEAL_F or score.recall >= REVEAL_RECALL


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def guard(text: str, solution: str | None) -> tuple[str, bool]:
    """``text`` with the sentences that give ``solution`` away taken out, and whether any were.

    Sentences are removed closest-to-the-solution first until the rest no longer reveals it."""
    if not solution or not reveals(text, solution):
        return text, False
    sentences = _SENTENCE.split(text)
    while sentences and reveals(" ".join(sentences), solution):
        worst = max(range(len(sentences)), key=lambda i: overlap(sentences[i], solution).fmeasure)
        sentences.pop(worst)
    return " ".join(sentences), True


class Coach:
    """``embed``: unit vectors for texts; ``explain(query) -> (text, sources)``: a short extractive passage from
    the readings (tutor.readings), or None when there is no index."""

    def __init__(self, embed: Callable | None = None, explain: Callable | None = None):
        if embed is None:
            from tutor.readings.embeddings import embed
        self.embed, self.explain = embed, explain

    # -- the entry point ---------------------------------------------------------------------------------
    def hint(self, session, lesson, exercise, lessons, asked_for_solution: bool = False) -> str:
        """The next hint for ``session`` (updated in place). Markdown, ending with what to do next."""
        opening = ("I won't write it for you: you learn this by writing it yourself. Here is a nudge instead.\n\n"
                   if asked_for_solution else "")
        miss = session.last_failed[0] if session.last_failed else None
        if miss is None:
            body = self._lesson_hint(session, lesson, exercise, lessons)
        else:
            if session.hint_focus != miss.name:
                session.hint_focus, session.hint_step = miss.name, 0
            session.hint_step += 1
            body = self._aimed_hint(session.hint_step, miss, lesson, exercise, lessons)
        text, _ = guard(body, exercise.solution)
        return opening + text

    # -- hints without a graded attempt --------------------------------------------------------------------
    def _lesson_hint(self, session, lesson, exercise, lessons) -> str:
        total = len(exercise.hints)
        if session.hints_shown < total:
            session.hints_shown += 1
            n = session.hints_shown
            more = ("Ask again for a more specific one." if n < total else
                    "That was my last hint from the lesson; ask once more for an example from another task.")
            return (f"**Hint {n} of {total}:** {exercise.hints[n - 1].strip()}\n\n"
                    f"**Next:** try it in your {_thing(exercise)} and `/submit` it. {more}")
        if session.hints_shown == total:
            session.hints_shown += 1
            return self._example(exercise.task, lesson, exercise, lessons) + (
                "\n\n**Next:** write your own version for this task and `/submit` it: I will point at exactly "
                "what is missing, if anything.")
        return _no_more(exercise)

    # -- hints aimed at the first failed check -----------------------------------------------------------
    def _aimed_hint(self, step: int, miss: Miss, lesson, exercise, lessons) -> str:
        where = f"Your last {_thing(exercise)} does not meet this requirement yet: **{miss.detail.strip()}**"
        ranked = self._hints_for(miss, exercise)
        if step == 1:
            questions = [h for h in ranked if h.rstrip().endswith("?")] or ranked
            return (f"{where}\n\nA question to think about: *{questions[0].strip()}*\n\n"
                    f"**Next:** change that one thing and `/submit` again. Ask me again if you want a more "
                    f"specific hint.")
        if step == 2:
            question = next((h for h in ranked if h.rstrip().endswith("?")), None)
            specific = next((h for h in ranked if h != question), ranked[0]).strip()
            reading = self._reading(miss.detail + " " + " ".join(lesson.reading_topics))
            return (f"A more specific hint about **{miss.detail.strip()}**\n\n{specific}{reading}\n\n"
                    f"**Next:** add this to your {_thing(exercise)} and `/submit` it. Ask again for an example "
                    f"from a different task.")
        if step == 3:
            return self._example(miss.detail, lesson, exercise, lessons) + (
                f"\n\n**Next:** do the same in your own {_thing(exercise)} for this task, then `/submit` it.")
        return (f"I have given you every hint I have on this point without writing it for you. It is still: "
                f"**{miss.detail.strip()}**\n\n" + _no_more(exercise))

    def _hints_for(self, miss: Miss, exercise) -> list[str]:
        """The exercise's hints, closest in meaning to the failed check first."""
        hints = list(exercise.hints)
        vectors = self.embed(hints)
        closeness = vectors @ self.embed([miss.detail])[0]
        return [hints[i] for i in np.argsort(-closeness)]

    def _reading(self, query: str) -> str:
        if self.explain is None:
            return ""
        text, sources = self.explain(query)
        if not text:
            return ""
        cited = "; ".join(f"[{n}] {p.source}" for n, p in enumerate(sources, 1))
        return f"\n\nFrom the readings: {text}\n\n_Sources: {cited}_"

    def _example(self, about: str, lesson, exercise, lessons) -> str:
        """An example from a different task that shows the technique ``about`` describes."""
        if exercise.kind == "answer":
            reading = self._reading(about + " " + " ".join(lesson.reading_topics))
            if reading:
                return ("Here is how the readings put the idea. Don't copy it: explain it in your own words, for "
                        "this task's case." + reading)
        candidates = [(ex.improved.strip(), ex.why.strip(), other.title) for other in lessons for ex in other.examples
                      if overlap(ex.improved, exercise.solution).fmeasure < EXAMPLE_MAX_F]
        if not candidates:
            return _no_more(exercise)
        vectors = self.embed([f"{text} {why}" for text, why, _ in candidates])
        # The lesson's own worked example teaches this very technique, so it wins when it is not too close to
        # the solution (0.15 is about the cosine gap between a related and an unrelated example).
        closeness = vectors @ self.embed([about])[0] + np.array([0.15 * (c[2] == lesson.title) for c in candidates])
        best = candidates[int(np.argmax(closeness))]
        return (f"Here is a prompt for a **different task** (from the lesson *{best[2]}*) that shows the "
                f"technique:\n\n{fenced(best[0])}\n\nWhy it works: {best[1]}")


def _thing(exercise) -> str:
    return "prompt" if exercise.kind == "prompt" else "answer"


def _no_more(exercise) -> str:
    return (f"That is all the help I can give on this exercise without doing it for you. **Next:** write your "
            f"best version of the {_thing(exercise)} and `/submit` it; the feedback will show what is still "
            "missing. Or type `/next` to move on and come back later.")
