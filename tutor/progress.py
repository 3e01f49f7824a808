"""Learner progress in SQLite (WAL): attempts, scores, hints used, lessons completed. Survives restarts.

One short connection per call: SQLite connections are not shared across Gradio's worker threads, and WAL
lets readers (the progress panel) run while a grade is being written.
"""
from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    learner TEXT NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL,
    score REAL NOT NULL, passed INTEGER NOT NULL, hints_used INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hints (
    learner TEXT NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (learner, lesson, exercise)
);
CREATE TABLE IF NOT EXISTS completed (
    learner TEXT NOT NULL, lesson TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (learner, lesson)
);
CREATE INDEX IF NOT EXISTS attempts_by_learner ON attempts (learner, lesson, exercise);
"""
_NAME = re.compile(r"[^\w .@-]+", re.UNICODE)


def learner_id(name: str | None, fallback: str) -> str:
    """A learner's key: the name they typed (trimmed, 64 characters of letters, digits, space . @ -) or the
    browser-local id."""
    cleaned = _NAME.sub("", (name or "").strip())[:64].strip()
    return cleaned or fallback


class Progress:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA busy_timeout=10000")
        return db

    def record_attempt(self, learner: str, lesson: str, exercise: str, score: float, passed: bool,
                       hints_used: int) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO attempts (learner, lesson, exercise, score, passed, hints_used, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (learner, lesson, exercise, float(score), int(passed), int(hints_used), time.time()))

    def record_hint(self, learner: str, lesson: str, exercise: str, used: int) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO hints VALUES (?, ?, ?, ?) ON CONFLICT (learner, lesson, exercise) "
                       "DO UPDATE SET used = max(used, excluded.used)", (learner, lesson, exercise, used))

    def hints_used(self, learner: str, lesson: str, exercise: str) -> int:
        with closing(self._connect()) as db:
            row = db.execute("SELECT used FROM hints WHERE learner=? AND lesson=? AND exercise=?",
                             (learner, lesson, exercise)).fetchone()
        return row[0] if row else 0

    def mark_completed(self, learner: str, lesson: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR IGNORE INTO completed VALUES (?, ?, ?)", (learner, lesson, time.time()))

    def passed_exercises(self, learner: str, lesson: str) -> set[str]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT DISTINCT exercise FROM attempts WHERE learner=? AND lesson=? AND passed=1",
                              (learner, lesson)).fetchall()
        return {r[0] for r in rows}

    def passed_by_lesson(self, learner: str) -> dict[str, set[str]]:
        """lesson id -> the exercises the learner has passed in it (read-only; for the course outline)."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT DISTINCT lesson, exercise FROM attempts WHERE learner=? AND passed=1",
                              (learner,)).fetchall()
        passed: dict[str, set[str]] = {}
        for lesson, exercise in rows:
            passed.setdefault(lesson, set()).add(exercise)
        return passed

    def completed_lessons(self, learner: str) -> set[str]:
        with closing(self._connect()) as db:
            return {r[0] for r in db.execute("SELECT lesson FROM completed WHERE learner=?", (learner,))}

    def summary(self, learner: str) -> dict:
        """Per lesson and exercise: attempts, best score, passed, hints used; and the completed lessons."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT a.lesson, a.exercise, COUNT(*), MAX(a.score), MAX(a.passed), COALESCE(h.used, 0) "
                "FROM attempts a LEFT JOIN hints h ON h.learner=a.learner AND h.lesson=a.lesson "
                "AND h.exercise=a.exercise WHERE a.learner=? GROUP BY a.lesson, a.exercise ORDER BY MIN(a.at)",
                (learner,)).fetchall()
            done = [r[0] for r in db.execute("SELECT lesson FROM completed WHERE learner=? ORDER BY at", (learner,))]
        exercises = [{"lesson": r[0], "exercise": r[1], "attempts": r[2], "best_score": round(r[3], 3),
                      "passed": bool(r[4]), "hints_used": r[5]} for r in rows]
        return {"learner": learner, "completed_lessons": done, "exercises": exercises}

    def markdown(self, learner: str) -> str:
        data = self.summary(learner)
        if not data["exercises"] and not data["completed_lessons"]:
            return f"**{learner}**: no attempts yet. Start a lesson and `/submit` an exercise."
        lines = [f"**{learner}**: {len(data['completed_lessons'])} lesson(s) completed"
                 + (f" ({', '.join(data['completed_lessons'])})" if data["completed_lessons"] else ""), "",
                 "| lesson | exercise | attempts | best | passed | hints |", "|---|---|---|---|---|---|"]
        for e in data["exercises"]:
            lines.append(f"| {e['lesson']} | {e['exercise']} | {e['attempts']} | {e['best_score']:.2f} | "
                         f"{'yes' if e['passed'] else 'no'} | {e['hints_used']} |")
        return "\n".join(lines)
