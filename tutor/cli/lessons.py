"""`tutor lessons check | list | calibrate` and `tutor grade [--learner NAME]`: lesson files and grading from the shell."""
from __future__ import annotations

import json
import sys
import time

from tutor.cli.files import read_text_file
from tutor.config import Settings
from tutor.errors import TutorError


def cmd_lessons_check(args, settings: Settings) -> int:
    from tutor.lessons import check_paths, sample_warnings

    paths = args.paths or [settings.lessons_dir]
    problems = check_paths(paths)
    for problem in problems:
        print(problem)
    # Warnings (too few labelled samples, no near miss) do not fail the check: a new lesson starts without them.
    for warning in sample_warnings(paths):
        print(f"warning: {warning}", file=sys.stderr)
    if not problems:
        print("all lesson files are valid", file=sys.stderr)
    return 1 if problems else 0


def cmd_lessons_calibrate(args, settings: Settings) -> int:
    """Grade every labelled sample and print agreement per exercise, false passes and false fails."""
    from tutor.grading import Grader, ModelCalibration
    from tutor.grading.calibrate import grade_samples, judge_earns_its_weight, judge_stats, summarise
    from tutor.lessons import load_lessons

    lessons = load_lessons(settings.lessons_dir)
    for problem in lessons.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if args.rubric_only:
        grader, model_name = Grader(None, settings.max_input_chars), "none (rubric only)"
    else:
        from tutor.models import load_model

        model = load_model(settings)
        calibration = ModelCalibration.for_model(model.info, settings.data_dir)
        grader, model_name = Grader(model, settings.max_input_chars, calibration), model.info.name
    from tqdm import tqdm

    split = None if args.split == "all" else args.split
    total = sum(1 for lesson in lessons for e in lesson.exercises for s in e.samples if not split or s.split == split)
    start = time.perf_counter()
    with tqdm(total=total, desc="Grading labelled samples", unit="sample", file=sys.stderr, disable=args.json) as bar:
        rows = grade_samples(lessons, grader, split, 0 if args.rubric_only else args.judge_cases,
                             lambda row: bar.update())
    report = {"model": model_name, "seconds": round(time.perf_counter() - start, 1), **summarise(rows)}
    if not args.rubric_only and args.judge_cases:
        stats = judge_stats(rows)
        used, why = judge_earns_its_weight(stats)
        grader.calibration.record_judge(stats)
        report["judge"] = {**stats, "used": used, "why": why}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(_calibration_text(report))
    return 0


def _calibration_text(report: dict) -> str:
    lines = [f"model: {report['model']} ({report['seconds']} s)"]
    for split in ("tune", "heldout"):
        if split not in report:
            continue
        part = report[split]
        t = part["total"]
        lines += ["", f"{split} split: agreement {t['agree']}/{t['samples']} ({t['agreement']:.0%}), "
                      f"false passes {t['false_pass']} ({t['false_pass_rate']:.0%} of should-fail), "
                      f"false fails {t['false_fail']} ({t['false_fail_rate']:.0%} of should-pass)",
                  f"  {'exercise':44} agree  false-pass  false-fail"]
        for name, f in part["exercises"].items():
            lines.append(f"  {name:44} {f['agree']:>2}/{f['samples']:<2}  {f['false_pass']:>10}  {f['false_fail']:>10}")
        for r in part["disagreements"]:
            why = f" (missing: {', '.join(r['missing'])})" if r["missing"] else ""
            lines.append(f"  disagrees: {r['lesson']}/{r['exercise']} sample {r['sample']}: expected {r['expect']}, "
                         f"graded {'pass' if r['passed'] else 'fail'}{why}")
    if "judge" in report:
        j = report["judge"]
        lines += ["", f"self-check: {'used' if j['used'] else 'not used'} on this model: {j['why']}"]
    return "\n".join(lines)


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
    from tutor.grading import Grader, ModelCalibration
    from tutor.lessons import load_lessons
    from tutor.models import load_model

    if not args.batch and not (args.lesson and args.exercise and (args.text is not None or args.file)):
        print("error: give --lesson, --exercise and --text or --file, or --batch FILE.jsonl", file=sys.stderr)
        return 2
    if args.learner is not None:
        grade_one = _recorder(args.learner, settings)
    else:
        lessons = load_lessons(settings.lessons_dir)
        model = load_model(settings)  # loaded once for a batch
        grader = Grader(model, settings.max_input_chars, ModelCalibration.for_model(model.info, settings.data_dir))

        def grade_one(lesson_id: str, exercise_id: str, text: str) -> dict:
            exercise = lessons.get(lesson_id).exercise(exercise_id)
            return grader.grade(exercise, text).to_json()

    if not args.batch:
        text = args.text if args.text is not None else read_text_file(args.file)
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


def _recorder(name: str, settings: Settings):
    """grade_one for --learner: grade and record the attempt through the course, as the app's Submit does."""
    from tutor.models import load_model
    from tutor.progress import learner_id, open_progress
    from tutor.runtime import build_course
    from tutor.tutor import Session

    learner = learner_id(name, "")
    if not learner:
        raise TutorError(f"--learner {name!r} has no letters or digits left once cleaned; give a name such as "
                         "'Ada Lovelace' (letters, digits, space . @ -, 64 characters at most)")
    progress = open_progress(settings)  # before the model: a wrong TUTOR_DATABASE_URL fails in seconds
    course = build_course(settings, load_model(settings), progress)

    def grade_one(lesson_id: str, exercise_id: str, text: str) -> dict:
        session = Session(learner=learner)
        course.go_to(session, lesson_id, exercise_id)
        grade, completed = course.grade_and_record(session, text)
        return {**grade.to_json(), "learner": learner, "recorded": True, "lesson_completed": completed}

    return grade_one


def register(sub) -> None:
    lessons = sub.add_parser("lessons", help="check and list lesson files").add_subparsers(dest="action", required=True)
    s = lessons.add_parser("check", help="validate lesson files; prints path:line: message per problem")
    s.add_argument("paths", nargs="*", help="files or folders (default: TUTOR_LESSONS_DIR)")
    s.set_defaults(fn=cmd_lessons_check)
    s = lessons.add_parser("calibrate", help="grade the exercises' labelled samples; agreement, false passes and fails")
    s.add_argument("--json", action="store_true")
    s.add_argument("--split", choices=("tune", "heldout", "all"), default="all")
    s.add_argument("--rubric-only", action="store_true",
                   help="no model: grade what the rubric alone decides (fast; output checks and judge left out)")
    s.add_argument("--judge-cases", type=int, default=40,
                   help="tuning samples the self-check is measured on (half should pass); 0 skips the measurement")
    s.set_defaults(fn=cmd_lessons_calibrate)
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
    s.add_argument("--learner", help="record each attempt in the progress store under this learner's name, "
                                     "exactly as the app's Submit does (lesson completion included)")
    s.add_argument("--json", action="store_true", help="one line of JSON (the default output is indented)")
    s.set_defaults(fn=cmd_grade)
