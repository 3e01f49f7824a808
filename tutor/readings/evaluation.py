"""How well the readings search finds the right reading: recall@k and mean reciprocal rank on a question set.

A question file holds one JSON object per line::

    {"question": "why do LLMs make stuff up", "source": "hallucinations-and-grounding.md", "split": "dev"}
    {"question": "and top p?", "previous": "what does temperature do", "source": "generation-settings.md",
     "split": "test"}

``previous`` marks a follow-up: the learner's earlier question, which the caller's ``resolve`` turns into one
search query, as the chat does. ``split`` separates the questions ranking choices were tuned on (``dev``) from
those kept aside to report (``test``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from tutor.errors import TutorError


def load_questions(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise TutorError(f"{path}:{n}: not valid JSON ({exc}); write one object per line.") from None
        if not isinstance(row, dict) or not {"question", "source"} <= row.keys():
            raise TutorError(f"{path}:{n}: each line needs a \"question\" and a \"source\" (null for a question "
                             "the readings do not cover).")
        rows.append(row)
    return rows


def _plain(question: str, previous: list[str]) -> str:
    return question


def evaluate(retriever, questions: list[dict], k: int = 3, split: str | None = None,
             resolve: Callable[[str, list[str]], str] = _plain) -> dict:
    """recall@k (share of questions whose reading is among the top k passages, the ones an answer is built
    from), MRR of the first passage from that reading within the top 10, and the misses. Questions with
    ``"source": null`` are ones the readings do not cover: ``refusals`` counts how many of them the tutor
    declines to answer ("the readings do not cover this"), and how many covered questions it wrongly declines.

    ``resolve(question, previous_questions)`` builds the search query; follow-ups need it."""
    from tutor.readings.grounding import EXTRACTIVE_POOL, covered

    chosen = [q for q in questions if split in (None, "all") or q.get("split", "dev") == split]
    rows = [q for q in chosen if q.get("source")]

    def declined(q: dict) -> bool:
        query = resolve(q["question"], [q["previous"]] if q.get("previous") else [])
        return not covered(retriever.search(query, k=EXTRACTIVE_POOL), query)

    uncovered = [q for q in chosen if not q.get("source")]
    refusals = {"uncovered": len(uncovered), "declined": sum(declined(q) for q in uncovered),
                "covered_declined": sum(declined(q) for q in rows)}
    misses, reciprocal = [], 0.0
    depth = max(k, 10)  # MRR looks further than k, so a reading at rank 5 still counts for something
    for q in rows:
        previous = [q["previous"]] if q.get("previous") else []
        ranked = [p.source for p in retriever.search(resolve(q["question"], previous), k=depth)]
        rank = ranked.index(q["source"]) + 1 if q["source"] in ranked else None
        reciprocal += 1 / rank if rank else 0.0
        if rank is None or rank > k:
            misses.append({"question": q["question"], "expected": q["source"], "rank": rank,
                           "got": list(dict.fromkeys(ranked[:k]))})
    n = len(rows)
    return {"k": k, "split": split or "all", "questions": n,
            "recall": round(1 - len(misses) / n, 4) if n else 0.0,
            "mrr": round(reciprocal / n, 4) if n else 0.0, "misses": misses, "refusals": refusals}

