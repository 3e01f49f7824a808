"""Learner progress: attempts, scores, failed checks, hints used, lessons completed. Survives restarts.

``Progress`` holds every query, in SQL that means the same in SQLite and PostgreSQL; a backend
(tutor.progress.sqlite or tutor.progress.postgres) supplies connections and transactions:

    backend.dialect                                   # "sqlite" | "postgres"
    backend.describe()                                # where the data lives, for messages
    with backend.transaction(write=True, lock="...") as tx:   # commit at the end, rollback on error
        tx.run("INSERT ... VALUES (?, ?)", (a, b)); tx.rows("SELECT ...", params)

Opening a store applies any missing schema migration (tutor.progress.migrations).
"""
from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tutor.progress import migrations

_NAME = re.compile(r"[^\w .@-]+", re.UNICODE)
# Keys (learner, lesson, exercise) longer than this are cut: names are 64 characters at most and lesson and
# exercise ids 64, so only a hostile caller reaches it.
KEY_CHARS = 128
# The dashboard reads at most this many attempts per view: a class of 200 learners x 15 lessons x ~3
# exercises x ~5 attempts is 45,000 rows, so 100,000 leaves room and keeps one view in tens of MB.
MAX_ROWS = 100_000
_ATTEMPT_COLUMNS = "id, learner, lesson, exercise, at, passed, score, hints_used, failed_checks"


def learner_id(name, fallback: str) -> str:
    """A learner's key: the name they typed (trimmed, 64 characters of letters, digits, space . @ -) or the
    browser-local id."""
    text = name[:256] if isinstance(name, str) else ""  # from a client: any type, any length
    cleaned = _NAME.sub("", text.strip())[:64].strip()
    return cleaned or fallback


def clean_key(value: str, what: str = "", required: bool = True) -> str:
    """A key is stored as data, whatever it holds (quotes, semicolons, SQL words): only control characters,
    which PostgreSQL cannot store (NUL) and terminals would run (ESC), are dropped, and it is cut to KEY_CHARS.
    Lookups clean the same way (``required=False``), so they find what was stored and never send a NUL."""
    text = "".join(ch for ch in str(value)[:4 * KEY_CHARS] if unicodedata.category(ch) != "Cc").strip()[:KEY_CHARS]
    if not text and required:
        raise ValueError(f"the {what} is empty once control characters are removed; give a visible name")
    return text


@dataclass(frozen=True)
class Attempt:
    id: int
    learner: str
    lesson: str
    exercise: str
    at: float  # seconds since the epoch, UTC
    passed: bool
    score: float
    hints_used: int
    failed_checks: tuple[str, ...]

    @classmethod
    def from_row(cls, row: tuple) -> "Attempt":
        try:
            failed = tuple(str(n) for n in json.loads(row[8] or "[]"))
        except (ValueError, TypeError):
            failed = ()
        return cls(int(row[0]), row[1], row[2], row[3], float(row[4]), bool(row[5]), float(row[6]), int(row[7]),
                   failed)


class Progress:
    def __init__(self, target):
        """``target``: a SQLite file path, or a backend (see the module docstring)."""
        if isinstance(target, (str, Path)):
            from tutor.progress.sqlite import SqliteBackend

            target = SqliteBackend(Path(target))
        self.db = target
        self.applied = migrations.upgrade(self.db)

    def describe(self) -> str:
        return self.db.describe()

    # -- writes ----------------------------------------------------------------------------------------
    def record_attempt(self, learner: str, lesson: str, exercise: str, score: float, passed: bool,
                       hints_used: int, failed_checks=(), lesson_exercises=None) -> bool:
        """Store an attempt. When it passed and ``lesson_exercises`` (every exercise id of the lesson) now
        all have a passing attempt, mark the lesson completed in the SAME transaction, so a crash can never
        keep one without the other. Returns True when this attempt passed and the lesson is complete."""
        learner, lesson, exercise = (clean_key(learner, "learner"), clean_key(lesson, "lesson id"),
                                     clean_key(exercise, "exercise id"))
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"a score must be a finite number, got {score}")
        checks = json.dumps([str(c) for c in failed_checks])
        now = time.time()
        # The lock queues this learner's other submissions to the same lesson (on any replica) behind this
        # one, so whichever commits last sees both passes and records the completion.
        with self.db.transaction(write=True, lock=f"attempt\x1f{learner}\x1f{lesson}") as tx:
            tx.run("INSERT INTO attempts (learner, lesson, exercise, score, passed, hints_used, at, failed_checks) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (learner, lesson, exercise, score, int(bool(passed)), int(hints_used), now, checks))
            if not passed or lesson_exercises is None:
                return False
            rows = tx.rows("SELECT DISTINCT exercise FROM attempts WHERE learner=? AND lesson=? AND passed=1",
                           (learner, lesson))
            if not {r[0] for r in rows} >= set(lesson_exercises):
                return False
            tx.run("INSERT INTO completed (learner, lesson, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   (learner, lesson, now))
            return True

    def record_hint(self, learner: str, lesson: str, exercise: str, used: int) -> None:
        key = (clean_key(learner, "learner"), clean_key(lesson, "lesson id"), clean_key(exercise, "exercise id"))
        with self.db.transaction(write=True) as tx:
            tx.run("INSERT INTO hints (learner, lesson, exercise, used) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (learner, lesson, exercise) DO UPDATE SET used = "
                   "CASE WHEN excluded.used > hints.used THEN excluded.used ELSE hints.used END",
                   (*key, int(used)))

    def mark_completed(self, learner: str, lesson: str) -> None:
        with self.db.transaction(write=True) as tx:
            tx.run("INSERT INTO completed (learner, lesson, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   (clean_key(learner, "learner"), clean_key(lesson, "lesson id"), time.time()))

    # -- one learner -------------------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """A read; string parameters are keys, cleaned as they were when stored."""
        params = tuple(clean_key(p, required=False) if isinstance(p, str) else p for p in params)
        with self.db.transaction(write=False) as tx:
            return tx.rows(sql, params)

    def hints_used(self, learner: str, lesson: str, exercise: str) -> int:
        rows = self._rows("SELECT used FROM hints WHERE learner=? AND lesson=? AND exercise=?",
                          (learner, lesson, exercise))
        return rows[0][0] if rows else 0

    def passed_exercises(self, learner: str, lesson: str) -> set[str]:
        rows = self._rows("SELECT DISTINCT exercise FROM attempts WHERE learner=? AND lesson=? AND passed=1",
                          (learner, lesson))
        return {r[0] for r in rows}

    def passed_by_lesson(self, learner: str) -> dict[str, set[str]]:
        """lesson id -> the exercises the learner has passed in it (for the course outline)."""
        passed: dict[str, set[str]] = {}
        for lesson, exercise in self._rows("SELECT DISTINCT lesson, exercise FROM attempts WHERE learner=? AND passed=1",
                                           (learner,)):
            passed.setdefault(lesson, set()).add(exercise)
        return passed

    def completed_lessons(self, learner: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT lesson FROM completed WHERE learner=? ORDER BY at", (learner,))]

    def summary(self, learner: str) -> dict:
        """Per lesson and exercise: attempts, best score, passed, hints used; and the completed lessons."""
        rows = self._rows(
            "SELECT a.lesson, a.exercise, COUNT(*), MAX(a.score), MAX(a.passed), COALESCE(MAX(h.used), 0) "
            "FROM attempts a LEFT JOIN hints h ON h.learner=a.learner AND h.lesson=a.lesson "
            "AND h.exercise=a.exercise WHERE a.learner=? GROUP BY a.lesson, a.exercise ORDER BY MIN(a.at)",
            (learner,))
        exercises = [{"lesson": r[0], "exercise": r[1], "attempts": r[2], "best_score": round(r[3], 3),
                      "passed": bool(r[4]), "hints_used": r[5]} for r in rows]
        return {"learner": learner, "completed_lessons": self.completed_lessons(learner), "exercises": exercises}

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

    # -- the class (dashboard and export) ------------------------------------------------------------------
    @staticmethod
    def _where(lesson: str | None, since: float | None, until: float | None) -> tuple[str, tuple]:
        clauses, params = [], []
        for sql, value in (("lesson = ?", lesson), ("at >= ?", since), ("at < ?", until)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)

    def attempts(self, lesson: str | None = None, since: float | None = None, until: float | None = None,
                 limit: int = MAX_ROWS) -> list[Attempt]:
        """Every attempt (of one lesson, in [since, until)), oldest first, at most ``limit`` (the newest)."""
        where, params = self._where(lesson, since, until)
        rows = self._rows(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts{where} ORDER BY at DESC, id DESC LIMIT ?",
                          (*params, max(1, min(int(limit), MAX_ROWS))))
        return [Attempt.from_row(r) for r in reversed(rows)]

    def completions(self, lesson: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[tuple[str, str, float]]:
        """(learner, lesson, at) for each completed lesson, oldest first."""
        where, params = self._where(lesson, since, until)
        return [(r[0], r[1], float(r[2])) for r in
                self._rows(f"SELECT learner, lesson, at FROM completed{where} ORDER BY at LIMIT ?", (*params, MAX_ROWS))]


def open_progress(settings) -> Progress:
    """The store the settings ask for: PostgreSQL when TUTOR_DATABASE_URL is set, else SQLite in the data dir."""
    if settings.database_url:
        from tutor.progress.postgres import PostgresBackend

        return Progress(PostgresBackend(settings.database_url))
    return Progress(settings.progress_db)
