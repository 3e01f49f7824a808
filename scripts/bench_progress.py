"""How the progress store and the instructor's dashboard hold up with a large class; prints JSON figures.

    python scripts/bench_progress.py                                   # a fresh SQLite file in a temp dir
    python scripts/bench_progress.py --url postgresql://u@127.0.0.1:5432/empty_db

A synthetic class: LEARNERS learners x every exercise of the shipped lessons, ATTEMPTS tries each (the last
one passes), written through the store one attempt per transaction, as the app writes them; then the
dashboard's read and figures for the whole class, and the CSV export.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tutor.config import ROOT
from tutor.lessons import load_lessons
from tutor.progress import Progress, report
from tutor.progress.postgres import PostgresBackend


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    p.add_argument("--learners", type=int, default=50)
    p.add_argument("--attempts", type=int, default=3, help="tries per learner and exercise")
    args = p.parse_args()

    lessons = list(load_lessons(ROOT / "lessons"))
    tmp = tempfile.TemporaryDirectory()
    store = Progress(PostgresBackend(args.url) if args.url else Path(tmp.name) / "progress.sqlite3")
    writes = []
    for n in range(args.learners):
        for lesson in lessons:
            every = [e.id for e in lesson.exercises]
            for exercise in every:
                for k in range(args.attempts):
                    passed = k == args.attempts - 1
                    t = time.perf_counter()
                    store.record_attempt(f"learner {n}", lesson.id, exercise, 0.9 if passed else 0.3, passed, k,
                                         [] if passed else ["contains (answer)"], every)
                    writes.append(time.perf_counter() - t)
    writes.sort()

    t = time.perf_counter()
    attempts = store.attempts()
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    order = [(lesson.id, e.id) for lesson in lessons for e in lesson.exercises]
    report.exercise_figures(attempts, order)
    report.lesson_figures(attempts, store.completions(), order)
    report.stuck_learners(attempts)
    figures_s = time.perf_counter() - t
    t = time.perf_counter()
    size = len(report.csv_text(attempts))
    export_s = time.perf_counter() - t
    print(json.dumps({
        "store": store.db.dialect, "attempts": len(attempts),
        "write_ms_p50": round(writes[len(writes) // 2] * 1000, 2),
        "write_ms_p95": round(writes[int(len(writes) * 0.95)] * 1000, 2),
        "dashboard_read_s": round(read_s, 3), "dashboard_figures_s": round(figures_s, 3),
        "csv_export_s": round(export_s, 3), "csv_mb": round(size / 1e6, 2)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
