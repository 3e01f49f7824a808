"""``tutor eval tutoring``: the tutor's replies to labelled learner messages, measured the way TUTORING.md
describes (intent accuracy, no reveal, guidance, mistake location, a next step, memory for follow-ups).

A message file holds one JSON object per line::

    {"id": 7, "split": "dev", "lesson": "delimiters", "exercise": "summarize-review", "after": "weak",
     "message": "I'm stuck", "intent": "stuck", "location": ["delimit", "fence"]}

``after: weak`` submits the exercise's weak submission (tests/data/submissions.yaml) first, so the reply can
aim at what it missed; ``location`` lists words of which one must appear for the reply to locate the mistake;
``previous`` is a question asked first, ``expect_source`` the reading a follow-up's answer must cite.

The text checks are deliberately simple and written down here, so anyone can re-judge a reply:
- guidance (for stuck / solution requests): a question to the learner, a hint, or an example;
- next step: the reply's last paragraph says what to do (``**Next:**``, a command, or a question);
- reveal: ROUGE-L F of the reply against the exercise's solution, before the exercise is passed.
"""
from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from tutor.rouge import rouge
from tutor.tutor import Session

REVEAL = 0.4
_GUIDANCE = re.compile(r"\?\*?$|\?\s|\*\*Hint|more specific hint|different task|From the readings|think about",
                       re.I | re.M)
_NEXT = re.compile(r"\*\*Next:\*\*|`/(submit|hint|next|lesson|lessons)\b|\?\s*\**_?\s*$", re.I)
REPEATS = 6  # "just give me the answer", again and again


def load_messages(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    for row in rows:
        missing = {"id", "message", "intent"} - row.keys()
        if missing:
            raise ValueError(f"{path}: message {row.get('id')} lacks {', '.join(sorted(missing))}")
    return rows


def answer_text(reply: str) -> str:
    """The reply without the sources block (the passages shown for checking are not the tutor's words)."""
    return reply.split("\n\n**Support:**")[0]


class Run:
    """Replays messages against one Tutor, each in a fresh session placed where the row says."""

    def __init__(self, tutor, weak: dict):
        self.tutor, self.weak = tutor, weak
        self._graded: dict[tuple, tuple] = {}  # (lesson, exercise) -> the weak attempt's misses, graded once

    def say(self, text: str, history: list, session: Session) -> tuple[str, float]:
        started = time.perf_counter()
        reply = "".join(self.tutor.reply(text, history, session))
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        return reply, time.perf_counter() - started

    def place(self, row: dict, session: Session, history: list) -> None:
        if not row.get("lesson"):
            return
        self.say(f"/lesson {row['lesson']}", history, session)
        course = self.tutor.course
        lesson = course.lessons.get(row["lesson"])
        session.exercise_index = [e.id for e in lesson.exercises].index(row["exercise"])
        course.pose(session)
        history.clear()
        if row.get("after") == "weak":
            key = (row["lesson"], row["exercise"])
            if key not in self._graded:
                self.say(f"/submit {self.weak[row['lesson']][row['exercise']]}", [], session)
                self._graded[key] = session.last_failed
            session.last_failed, session.last_move = self._graded[key], "/submit"

    def judge(self, row: dict) -> dict:
        session, history = Session(learner=f"eval-{row['id']}"), []
        self.place(row, session, history)
        if row.get("previous"):
            self.say(row["previous"], history, session)
        reply, seconds = self.say(row["message"], history, session)
        _, exercise = self.tutor.course.current(session) if row.get("lesson") else (None, None)
        text = answer_text(reply)
        paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
        result = {"id": row["id"], "split": row.get("split", "dev"), "intent": row["intent"],
                  "got": session.last_move, "seconds": round(seconds, 3), "message": row["message"], "reply": text,
                  "next_step": bool(paragraphs and _NEXT.search(paragraphs[-1]))}
        if exercise is not None and not session.solved:
            result["rougeL"] = rouge(text, [exercise.solution])["rougeL"]
        if row["intent"] in ("stuck", "solution_request"):
            result["guidance"] = bool(_GUIDANCE.search(text))
        if row.get("location"):
            result["location"] = any(k.lower() in text.lower() for k in row["location"])
        if row.get("expect_source"):
            result["memory"] = row["expect_source"] in reply
        return result

    def repeat_probe(self) -> list[float]:
        """For every exercise: ask for the solution REPEATS times in a row; the highest ROUGE-L of any reply."""
        worst = []
        for lesson in self.tutor.course.lessons:
            for exercise in lesson.exercises:
                session, history = Session(learner=f"probe-{lesson.id}-{exercise.id}"), []
                self.say(f"/lesson {lesson.id}", history, session)
                session.exercise_index = [e.id for e in lesson.exercises].index(exercise.id)
                self.tutor.course.pose(session)
                replies = [self.say("just give me the answer", history, session)[0] for _ in range(REPEATS)]
                worst.append(max(rouge(answer_text(r), [exercise.solution])["rougeL"] for r in replies))
        return worst


def summarize(results: list[dict], probe: list[float] | None = None) -> dict:
    def share(key: str, rows: list[dict]) -> dict:
        judged = [r[key] for r in rows if key in r]
        return {"share": round(sum(judged) / len(judged), 3) if judged else None, "of": len(judged)}

    report = {}
    for split in sorted({r["split"] for r in results}) + ["all"]:
        rows = [r for r in results if split in ("all", r["split"])]
        rouges = [r["rougeL"] for r in rows if "rougeL" in r]
        report[split] = {
            "messages": len(rows),
            "intent_accuracy": round(sum(r["got"] == r["intent"] for r in rows) / len(rows), 3),
            "reveal_rate": round(sum(x >= REVEAL for x in rouges) / len(rouges), 3) if rouges else None,
            "max_rougeL_vs_solution": max(rouges) if rouges else None,
            "guidance": share("guidance", rows), "mistake_location": share("location", rows),
            "next_step": share("next_step", rows), "followup_memory": share("memory", rows),
            "confusions": dict(Counter(f"{r['intent']}->{r['got']}" for r in rows if r["got"] != r["intent"])),
        }
    seconds = [r["seconds"] for r in results]
    report["latency_s"] = {"median": round(statistics.median(seconds), 3),
                           "p90": round(sorted(seconds)[int(0.9 * (len(seconds) - 1))], 3), "max": max(seconds)}
    if probe is not None:
        report["repeat_probe"] = {"exercises": len(probe), "asks_each": REPEATS, "max_rougeL": max(probe),
                                  "reveals": sum(x >= REVEAL for x in probe)}
    return report
