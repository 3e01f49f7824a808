"""`tutor progress export --csv [--lesson ID]` and `tutor db upgrade`: the class's progress from the shell."""
from __future__ import annotations

import sys

from tutor.config import Settings


def cmd_export(args, settings: Settings) -> int:
    from tutor.progress import open_progress, report

    try:
        filters = report.parse_filters(args.lesson, args.start, args.end)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    attempts = open_progress(settings).attempts(filters.lesson, filters.since, filters.until)
    text = report.csv_text(attempts)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        print(f"wrote {len(attempts)} attempt(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_db_upgrade(args, settings: Settings) -> int:
    from tutor.progress import migrations, open_progress

    store = open_progress(settings)  # opening applies what is missing, under the migration lock
    applied = ", ".join(store.applied) or "nothing (already up to date)"
    print(f"{store.describe()}: schema version {migrations.current_version(store.db)}; applied {applied}")
    return 0


def register(sub) -> None:
    progress = sub.add_parser("progress", help="learner progress").add_subparsers(dest="action", required=True)
    s = progress.add_parser("export", help="one CSV row per attempt: learner, lesson, exercise, time (UTC), "
                                           "passed, score, failed checks, hints used")
    s.add_argument("--csv", action="store_true", required=True, help="CSV (the only format for now)")
    s.add_argument("--lesson", help="only this lesson id")
    s.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="attempts from this UTC day on")
    s.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="attempts up to this UTC day, included")
    s.add_argument("--output", "-o", help="write to this file instead of standard output")
    s.set_defaults(fn=cmd_export)

    db = sub.add_parser("db", help="the progress database").add_subparsers(dest="action", required=True)
    s = db.add_parser("upgrade", help="apply the schema migrations this release needs (the app also does at start)")
    s.set_defaults(fn=cmd_db_upgrade)
