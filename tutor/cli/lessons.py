"""`tutor lessons check | list` and `tutor grade`: lesson files and grading from the shell."""
from __future__ import annotations

import json
import sys

from tutor.config import Settings
from tutor.errors import TutorError


def cmd_lessons_check(args, settings: Settings) -> int:
    from tutor.lessons import check_paths

    problems = check_paths(args.paths or [settings.lessons_dir])
    for problem in problems:
        print(problem)
    if not problems:
        print("all lesson files are valid", file=sys.stderr)
    return 1 if problems else 0


def cmd_lessons_list(args, settings: Settings) -> int:
    from tutor.lessons import load_lessons

    lessons = load_lessons(settings.lessons_dir)
    for problem in lessons.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(lessons.summary(), indent=2))
    else:
        for lesson in lessons.summary():
            print(f"{lesson['id']}: {lesson['title']} ({', '.join(e['id'] for e in lesson['exercises'])})")
    return 0


def cmd_grade(args, settings: Settings) -> int:
    from tutor.grading import Grader
    from tutor.lessons import load_lessons
    from tutor.models import load_model

    if not args.batch and not (args.lesson and args.exercise and (args.text is not None or args.file)):
        print("error: give --lesson, --exercise and --text or --file, or --batch FILE.jsonl", file=sys.stderr)
        return 2
    lessons = load_lessons(settings.lessons_dir)
    grader = Grader(load_model(settings), settings.max_input_chars)  # the model is loaded once for a batch

    def grade_one(lesson_id: str, exercise_id: str, text: str) -> dict:
        exercise = lessons.get(lesson_id).exercise(exercise_id)
        return grader.grade(exercise, text).to_json()

    if not args.batch:
        text = args.text if args.text is not None else _read_text(args.file)
        result = grade_one(args.lesson, args.exercise, text)
        print(json.dumps(result, indent=None if args.json else 2))
        return 0
    failures = 0
    with open(args.batch, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                result = {"lesson": item["lesson"], "exercise": item["exercise"],
                          **grade_one(item["lesson"], item["exercise"], item["text"])}
            except (ValueError, KeyError, TypeError, TutorError) as exc:
                failures += 1
                reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                result = {"line": number, "error": f"{args.batch}:{number}: {reason}"}
            print(json.dumps(result), flush=True)
    return 1 if failures else 0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TutorError(f"cannot read {path}: {exc}") from exc


def register(sub) -> None:
    lessons = sub.add_parser("lessons", help="check and list lesson files").add_subparsers(dest="action", required=True)
    s = lessons.add_parser("check", help="validate lesson files; prints path:line: message per problem")
    s.add_argument("paths", nargs="*", help="files or folders (default: TUTOR_LESSONS_DIR)")
    s.set_defaults(fn=cmd_lessons_check)
    s = lessons.add_parser("list", help="the valid lessons with their exercises")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_lessons_list)

    s = sub.add_parser("grade", help="grade a submission (or a JSONL batch) and print JSON")
    s.add_argument("--lesson")
    s.add_argument("--exercise")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--text")
    group.add_argument("--file")
    group.add_argument("--batch", help='JSONL lines of {"lesson", "exercise", "text"}')
    s.add_argument("--json", action="store_true", help="one line of JSON (the default output is indented)")
    s.set_defaults(fn=cmd_grade)
