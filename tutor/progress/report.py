"""What an instructor sees of the class: figures per lesson and exercise, stuck learners, the CSV export.

Framework-free: plain rows in, plain rows out; the Instructor tab and `tutor progress export` render them.
Every figure is computed over the attempts inside the chosen filters (one lesson or all, a date range):

- learners: distinct learners with at least one attempt
- pass rate: the share of those learners with at least one passing attempt
- median attempts to pass: over learners who passed, attempts up to and including their first pass
- hints used: the mean, over learners, of the most hints each had seen when they submitted
- failing checks: the checks that failed most often, by name, with how many attempts failed each
- stuck: learners with STUCK_AFTER or more failed attempts at an exercise and no pass
"""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from tutor.progress.store import Attempt

# Three failed attempts and no pass: one miss is normal, two can be bad luck with a check, three usually mean
# the learner does not see what the exercise asks and would benefit from a word from the instructor.
STUCK_AFTER = 3
TOP_CHECKS = 3  # failing checks listed per exercise
ALL = "all lessons"
_LESSON_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A calibration file bigger than this is not a results file (270 exercises x ~200 bytes is ~54 kB).
CALIBRATION_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class Filters:
    lesson: str | None = None  # None: every lesson
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive


def parse_filters(lesson: str | None, start: str | None, end: str | None) -> Filters:
    """The dashboard's filters from what a client sent, or ValueError saying what to fix. Dates are whole UTC
    days (YYYY-MM-DD), both ends included; empty means open-ended."""
    lesson = (lesson or "").strip()
    if lesson in ("", ALL):
        lesson_id = None
    elif len(lesson) <= 64 and _LESSON_ID.match(lesson):
        lesson_id = lesson
    else:
        raise ValueError("the lesson filter is not a lesson id (up to 64 lowercase letters, digits and hyphens, "
                         "e.g. delimiters); pick one from the list or leave it empty for every lesson")
    since, until = _day(start, "from"), _day(end, "to")
    if since and until and since > until:
        raise ValueError(f"the range starts ({start}) after it ends ({end}); swap the two dates")
    return Filters(lesson_id, since, until + 86_400 if until is not None else None)


def _day(text: str | None, which: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        if not _DAY.match(text):
            raise ValueError
        day = date.fromisoformat(text)
        if not 2000 <= day.year <= 2100:
            raise ValueError
    except ValueError:
        raise ValueError(f"the '{which}' date is not a day between 2000 and 2100 written YYYY-MM-DD, e.g. "
                         f"{date.today().isoformat()}") from None
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _by_exercise(attempts: list[Attempt]) -> dict[tuple[str, str], dict[str, list[Attempt]]]:
    """(lesson, exercise) -> learner -> their attempts, oldest first."""
    groups: dict[tuple[str, str], dict[str, list[Attempt]]] = defaultdict(lambda: defaultdict(list))
    for a in sorted(attempts, key=lambda a: (a.at, a.id)):
        groups[(a.lesson, a.exercise)][a.learner].append(a)
    return groups


def _ordered(keys, order: list[tuple[str, str]] | None):
    """Keys in the course's order (lesson, then exercise), then any no longer in the course, by name."""
    rank = {key: i for i, key in enumerate(order or [])}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), k))


def exercise_figures(attempts: list[Attempt], order=None, calibration=None) -> list[dict]:
    rows = []
    groups = _by_exercise(attempts)
    for key in _ordered(groups, order):
        learners = groups[key]
        to_pass = [next(i for i, a in enumerate(tries, 1) if a.passed)
                   for tries in learners.values() if any(a.passed for a in tries)]
        failing = Counter(name for tries in learners.values() for a in tries for name in a.failed_checks)
        stuck = sorted(name for name, tries in learners.items()
                       if not any(a.passed for a in tries) and len(tries) >= STUCK_AFTER)
        rows.append({
            "lesson": key[0], "exercise": key[1], "learners": len(learners),
            "attempts": sum(len(t) for t in learners.values()),
            "pass rate": round(len(to_pass) / len(learners), 3),
            "median attempts to pass": statistics.median(to_pass) if to_pass else None,
            "hints used": round(statistics.mean(max(a.hints_used for a in t) for t in learners.values()), 2),
            "failing checks": ", ".join(f"{name} ×{n}" for name, n in failing.most_common(TOP_CHECKS)),
            "stuck": len(stuck),
            "calibration": (calibration or {}).get(key, ""),
        })
    return rows


def lesson_figures(attempts: list[Attempt], completions: list[tuple[str, str, float]], order=None) -> list[dict]:
    learners, counts = defaultdict(set), Counter()
    for a in attempts:
        learners[a.lesson].add(a.learner)
        counts[a.lesson] += 1
    done = defaultdict(set)
    for learner, lesson, _ in completions:
        done[lesson].add(learner)
    rank = {lesson: i for i, lesson in enumerate(dict.fromkeys(lesson for lesson, _ in (order or [])))}
    rows = []
    for lesson in sorted(set(learners) | set(done), key=lambda l: (rank.get(l, len(rank)), l)):
        tried = len(learners[lesson])
        rows.append({"lesson": lesson, "learners": tried, "attempts": counts[lesson],
                     "completed": len(done[lesson]),
                     "completion rate": round(len(done[lesson]) / tried, 3) if tried else None})
    return rows


def stuck_learners(attempts: list[Attempt]) -> list[dict]:
    rows = []
    for (lesson, exercise), learners in _by_exercise(attempts).items():
        for learner, tries in learners.items():
            if not any(a.passed for a in tries) and len(tries) >= STUCK_AFTER:
                rows.append({"learner": learner, "lesson": lesson, "exercise": exercise,
                             "failed attempts": len(tries), "last attempt": iso_time(tries[-1].at)})
    return sorted(rows, key=lambda r: (-r["failed attempts"], r["learner"], r["lesson"], r["exercise"]))


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


EXPORT_COLUMNS = ["learner", "lesson", "exercise", "time", "passed", "score", "failed checks", "hints used"]


def _cell(text: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @ (or a tab/CR before one) as a formula: prefix an
    apostrophe so a learner's name is shown, never run (OWASP's advice for CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_text(attempts: list[Attempt]) -> str:
    """One row per attempt, oldest first; times in UTC (ISO 8601); failed checks joined by '; '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for a in sorted(attempts, key=lambda a: (a.at, a.id)):
        writer.writerow([_cell(a.learner), _cell(a.lesson), _cell(a.exercise), iso_time(a.at),
                         "yes" if a.passed else "no", f"{a.score:.3f}", _cell("; ".join(a.failed_checks)),
                         a.hints_used])
    return out.getvalue()


def load_calibration(path: Path) -> dict[tuple[str, str], str]:
    """(lesson, exercise) -> "9/10 agree" from a calibration results file, or {} when there is none.

    Accepted: a JSON list of results, or {"exercises": [...]}, each result holding "lesson", "exercise" and
    either "agreed" and "total" (samples) or "agreement" (a fraction 0-1). Unreadable files count as absent."""
    try:
        if not path.is_file() or path.stat().st_size > CALIBRATION_MAX_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    items = data.get("exercises", []) if isinstance(data, dict) else data
    found = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not {"lesson", "exercise"} <= item.keys():
            continue
        agreed, total, share = item.get("agreed"), item.get("total"), item.get("agreement")
        if isinstance(agreed, int) and isinstance(total, int) and total > 0:
            text = f"{agreed}/{total} agree ({agreed / total:.0%})"
        elif isinstance(share, (int, float)) and 0 <= share <= 1:
            text = f"{share:.0%} agree"
        else:
            continue
        found[(str(item["lesson"])[:64], str(item["exercise"])[:64])] = text
    return found
