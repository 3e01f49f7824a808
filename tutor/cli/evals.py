"""`tutor eval retrieval | tutoring | answers`: measure the readings search, the tutoring moves and the answers,
each on a question set with a held-out split (reported separately; never used to tune)."""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tutor.config import ROOT, Settings

DATA = ROOT / "tests" / "data"


def _retriever(settings: Settings):
    from tutor.readings import retrieval

    retrieval.ensure_index(settings, progress=True)
    return retrieval.Retriever(settings)


def _print(result: dict, as_json: bool, lines: list[str]) -> None:
    print(json.dumps(result, indent=2, ensure_ascii=False) if as_json else "\n".join(lines))


def cmd_eval_retrieval(args, settings: Settings) -> int:
    from tutor.readings import evaluation
    from tutor.tutor import Session
    from tutor.tutoring.replies import resolve

    questions = evaluation.load_questions(Path(args.questions))

    def as_the_chat_does(question: str, previous: list[str]) -> str:  # a follow-up is about the last question
        return resolve(question, [{"role": "user", "content": p} for p in previous], Session(), bool(previous))

    retriever = _retriever(settings)
    splits = sorted({q.get("split", "dev") for q in questions}) + ["all"]
    results = {s: evaluation.evaluate(retriever, questions, args.k, s, as_the_chat_does) for s in splits}
    lines = [f"{s:>8}: recall@{args.k} {r['recall']:.3f}  MRR {r['mrr']:.3f}  ({r['questions']} questions)"
             + (f"; not covered by the readings: {r['refusals']['declined']} of {r['refusals']['uncovered']} "
                f"declined" if r["refusals"]["uncovered"] else "")
             + f"; covered questions declined: {r['refusals']['covered_declined']}"
             for s, r in results.items()]
    lines += [f"  missed: {m['question']!r}: expected {m['expected']} (rank {m['rank']}), got {', '.join(m['got'])}"
              for m in results["all"]["misses"]]
    _print(results, args.json, lines + [f"target recall@{args.k} >= {args.target}"])
    return 0 if results["all"]["recall"] >= args.target else 1


def cmd_eval_answers(args, settings: Settings) -> int:
    """Key facts of written reference answers found in the tutor's answers (extractive: no model needed)."""
    from tutor.readings import grounding

    retriever = _retriever(settings)
    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if args.split in ("all", r.get("split", "dev"))]
    model = None
    if args.mode != "extractive":
        from tutor.models import load_model

        model = load_model(settings)
    report, lines = {}, []
    for row in rows:
        started = time.perf_counter()
        result = grounding.answer(row["question"], retriever, model, mode=args.mode)
        seconds = time.perf_counter() - started
        low = result.text.lower()
        found = [any(alt.lower() in low for alt in alts) for alts in row["key_facts"]]
        split = report.setdefault(row.get("split", "dev"), {"questions": 0, "all_facts": 0, "fact_share": 0.0,
                                                             "seconds": []})
        split["questions"] += 1
        split["all_facts"] += all(found)
        split["fact_share"] += sum(found) / len(found)
        split["seconds"].append(seconds)
        lines.append(f"[{'ok' if all(found) else 'partly' if any(found) else 'MISS':>6}] {row['question']}\n"
                     f"         {result.text}\n         reference: {row['reference']}")
    for name, split in report.items():
        seconds = sorted(split.pop("seconds"))
        split["fact_share"] = round(split["fact_share"] / split["questions"], 3)
        split["median_seconds"] = round(seconds[len(seconds) // 2], 3)
        lines.append(f"{name}: all key facts in {split['all_facts']}/{split['questions']}, mean share of key facts "
                     f"{split['fact_share']:.3f}, median {split['median_seconds']} s per answer ({args.mode})")
    _print(report, args.json, lines)
    return 0


def cmd_eval_tutoring(args, settings: Settings) -> int:
    import yaml

    from tutor.models import load_model
    from tutor.runtime import build_answerer, build_course, build_moves
    from tutor.tutor import Tutor
    from tutor.tutoring import evaluate

    rows = evaluate.load_messages(Path(args.messages))
    if args.split != "all":
        rows = [r for r in rows if r.get("split") == args.split]
    weak = {lesson: {ex: pair["weak"] for ex, pair in exercises.items()}
            for lesson, exercises in yaml.safe_load(Path(args.submissions).read_text()).items()}
    model = load_model(settings)
    answerer = build_answerer(settings, model)
    retriever = answerer.retriever if answerer is not None else None
    with tempfile.TemporaryDirectory() as scratch:  # eval learners' progress stays out of the real database
        course = build_course(replace(settings, data_dir=Path(scratch), database_url=""), model, retriever=retriever)
        tutor = Tutor(settings, model, course=course, answerer=answerer, moves=build_moves(course, retriever))
        run = evaluate.Run(tutor, weak)
        results = [run.judge(row) for row in rows]
        probe = None if args.no_probe else run.repeat_probe()
    report = evaluate.summarize(results, probe)
    if args.details:
        report["details"] = results
    lines = []
    for split, r in report.items():
        if split in ("latency_s", "repeat_probe", "details"):
            continue
        lines.append(f"{split:>8}: intent accuracy {r['intent_accuracy']:.3f} on {r['messages']}; reveal rate "
                     f"{r['reveal_rate']} (max ROUGE-L {r['max_rougeL_vs_solution']}); guidance "
                     f"{r['guidance']['share']} of {r['guidance']['of']}; mistake location {r['mistake_location']['share']}"
                     f" of {r['mistake_location']['of']}; next step {r['next_step']['share']}; follow-up memory "
                     f"{r['followup_memory']['share']} of {r['followup_memory']['of']}; confusions {r['confusions']}")
    lines.append(f"latency per reply: {report['latency_s']}")
    if probe is not None:
        lines.append(f"asked for the solution {evaluate.REPEATS}x on every exercise: {report['repeat_probe']}")
    _print(report, args.json, lines)
    return 0 if report["all"]["intent_accuracy"] >= args.target and not (probe and report["repeat_probe"]["reveals"]) else 1


def register(evals) -> None:
    s = evals.add_parser("retrieval", help="recall@k and MRR of the readings search per split; exit 1 below target")
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--questions", default=str(DATA / "learner_questions.jsonl"))
    s.add_argument("--target", type=float, default=0.95)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_retrieval)

    s = evals.add_parser("answers", help="key facts of reference answers found in the tutor's answers, per split")
    s.add_argument("--questions", default=str(DATA / "course_answers.jsonl"))
    s.add_argument("--mode", choices=("extractive", "generative"), default="extractive")
    s.add_argument("--split", default="all", help="dev, test or all")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_answers)

    s = evals.add_parser("tutoring", help="intent accuracy, reveal rate, guidance, mistake location, next step")
    s.add_argument("--messages", default=str(DATA / "learner_messages.jsonl"))
    s.add_argument("--submissions", default=str(DATA / "submissions.yaml"))
    s.add_argument("--split", default="all", help="dev, test, holdout, blind or all")
    s.add_argument("--target", type=float, default=0.95, help="exit 1 when intent accuracy is below it")
    s.add_argument("--no-probe", action="store_true", help="skip asking for the solution on every exercise")
    s.add_argument("--details", action="store_true", help="every message's result in the JSON")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_tutoring)
